"""Running a sweep: an Optuna study whose trials are the grid's points, each trained exactly once.

The study is the work queue (``_queue``): every point waits as a WAITING trial and a worker claims it
with Optuna's compare-and-set, so any number of workers, in one `gansweep run` or in many on several
machines, share a sweep without training a point twice.

- **Default store** (``mlruns/``): Optuna's JournalStorage (``optuna.journal``) and MLflow on SQLite.
  One `gansweep run` per sweep and store at a time (``SweepLock``), with ``--workers`` processes; a
  worker process that dies has its trial queued again by its `gansweep run` at once.
- **Shared** (``--storage postgresql://...``, ``--tracking-uri http://...``): any number of
  `gansweep run` processes anywhere. Workers send heartbeats through Optuna's RDB storage; a trial
  whose worker falls silent for ``GRACE_HEARTBEATS`` beats is failed by whichever worker notices
  first and queued again.

Either way the next owner of a queued-again trial ends the dead run as KILLED and resumes from the
epoch checkpoint in that run's artifacts. A trial that raises is recorded as failed with its error
and the worker goes on; ``--retry-failed`` queues such points again.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gansweep.config import load_config, plan_trials
    >>> folder = tempfile.TemporaryDirectory()
    >>> grid = Path(folder.name) / "tiny.yaml"
    >>> _ = grid.write_text("epochs: 1\\ndevice: cpu\\nmodels: [{model: cs231n-mlp, batch_size: 500, points: [{lr: 1.0e-3}]}]\\n")
    >>> config = load_config(grid)
    >>> settings = SweepSettings(config, grid.read_text(), config.name, grid.parent / "mlruns", devices=("cpu",))
    >>> result = run_sweep(settings, plan_trials(config), on_event=lambda event: None)
    >>> result.trained, [state.value for state in result.states.values()]
    (1, ['complete'])
    >>> folder.cleanup()
"""

from gansweep.sweep._judge import check_recorded_judge, recorded_judge
from gansweep.sweep._layout import cores
from gansweep.sweep._queue import point_status, records_by_key, states_by_key, stored_plans
from gansweep.sweep._record import State, TrialRecord
from gansweep.sweep._run import SweepResult, Terminated, complete_search_trials, run_sweep
from gansweep.sweep._settings import SweepSettings
from gansweep.sweep._storage import open_study

__all__ = [
    "State",
    "SweepResult",
    "SweepSettings",
    "Terminated",
    "TrialRecord",
    "check_recorded_judge",
    "complete_search_trials",
    "cores",
    "open_study",
    "point_status",
    "recorded_judge",
    "records_by_key",
    "run_sweep",
    "states_by_key",
    "stored_plans",
]
