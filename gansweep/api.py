"""gansweep from Python, for notebooks: ``gansweep.run(grid)`` and ``gansweep.report(name_or_grid)``.

``run`` takes what ``gansweep run`` takes: a grid.yaml path, or a dict shaped like one, and the command's
options as keyword arguments. It trains what is missing, exactly as the command does (same store, same
MLflow runs), and returns a ``Sweep``: its report as a pandas DataFrame, its trials, and ``show(run)``,
matplotlib figures of a trial's samples and losses, which a notebook displays.

Example (the README runs a longer one)::

    import gansweep
    sweep = gansweep.run({"epochs": 1, "device": "cpu", "models": [{"model": "cs231n-mlp", "grid": {"lr": [1e-3, 2e-4]}}]})
    sweep.report()                      # one row per trial: settings, outcome, fid_mnist, run id
    sweep.show(sweep.report().run_id[0])  # [samples figure, loss figure]
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from gansweep.artifacts import HISTORY_FILE, SAMPLES_FILE, read_history, sample_grid
from gansweep.commands._shared import grid_or_name
from gansweep.commands.run import preflight, sweep_report, sweep_settings
from gansweep.config import SweepConfig, TrialPlan, load_config, plan_trials
from gansweep.data import TRAIN_SIZES
from gansweep.diagnostics import diagnose
from gansweep.errors import GansweepError, redact
from gansweep.options import STORE, RunOptions, path_problem
from gansweep.pictures import loss_figure
from gansweep.progress import STDERR, SweepProgress
from gansweep.sweep import SweepResult, SweepSettings, open_study, point_status, run_sweep
from gansweep.tables import seed_records, study_rows
from gansweep.tracking import Tracker, resolve_run


@dataclass
class Sweep:
    """A sweep run from Python: its settings, its plans and what the last ``run`` did."""

    settings: SweepSettings
    plans: list[TrialPlan]
    """The grid's plans (``result.plans`` adds the completed search trials)."""
    result: SweepResult

    def report(self) -> pd.DataFrame:
        """One row per trial, in the grid's order (``report_frame``)."""
        return report_frame(self.settings, self.result.plans)

    def trials(self) -> pd.DataFrame:
        """One row per trial: state, worker, epoch, detail, run id (``gansweep status --json``)."""
        study = open_study(self.settings, create=False)
        return pd.DataFrame(point_status(study.get_trials(deepcopy=False), self.plans, self.settings.config.n_search))

    def show(self, run: str) -> list[Figure]:
        """A trial's last sample grid and its loss curves (flag onsets marked), from its MLflow run."""
        if not isinstance(run, str):
            raise GansweepError(f"Sweep.show: give a trial's run id (report().run_id), got {run!r}")
        run = resolve_run(self.settings.mlflow_uri, run)  # the 8 characters report() and status print
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name in (HISTORY_FILE, SAMPLES_FILE):
                Tracker.download(self.settings.mlflow_uri, run, name, folder)
            history = read_history(folder)
        samples = Figure(figsize=(5, 5))
        ax = samples.subplots()
        ax.imshow(sample_grid(history.samples[-1]), cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title(f"samples after epoch {len(history.epochs)}")
        _display_figures_as_images()
        return [samples, loss_figure(history, diagnose(history.epochs).flags)]


def run(grid: str | Path | dict[str, Any], *, progress: bool = True, **options: Any) -> Sweep:
    """``gansweep run GRID`` from Python: ``options`` are the command's, as ``options.RunOptions`` names
    them (store, name, storage, tracking_uri, workers, devices, trials_per_device, heartbeat, group_size,
    retry_failed); a dict ``grid`` is a grid.yaml's content (its ``name`` defaults to "sweep"), numpy
    numbers and arrays included.

    One worker in this process unless ``workers`` says otherwise (the command's default, "auto", may
    start worker processes, and a script that calls this without ``if __name__ == "__main__":`` would
    start its own copy in each of them). Every check the command makes comes before anything is written."""
    unknown = set(options) - {f.name for f in fields(RunOptions)}
    if unknown:
        allowed = ", ".join(f.name for f in fields(RunOptions))
        raise GansweepError(f"gansweep.run: unknown option {', '.join(sorted(unknown))}; it takes: {allowed}")
    if not isinstance(progress, bool):
        raise GansweepError(f"gansweep.run: progress must be True or False, got {progress!r}")
    chosen = RunOptions(**{"workers": 1 if options.get("devices") is None else "auto", **options})
    with _grid_file(grid, "gansweep.run") as (path, source):
        settings = sweep_settings(path, chosen)
    config = settings.config
    plans = plan_trials(config, TRAIN_SIZES[config.dataset], source)
    preflight(settings, "devices=" if chosen.devices is not None else "device:")
    if progress:
        # In a notebook rich draws live bars through ipywidgets (Colab has it); without it, a warning per
        # refresh: then the line per finished trial only.
        live = not (STDERR.is_jupyter and importlib.util.find_spec("ipywidgets") is None)
        with SweepProgress(live=live) as shown:
            result = run_sweep(settings, plans, shown)
    else:
        result = run_sweep(settings, plans, lambda event: None)
    if result.fatal:
        raise GansweepError(result.fatal)
    sweep_report(settings, result.plans, result.parent_run)
    return Sweep(settings, plans, result)


def report(
    name_or_grid: str | Path | dict[str, Any], *, store: str | Path = STORE, storage: str | None = None
) -> pd.DataFrame:
    """A sweep's report as a DataFrame: by its name (the trials in the store), or by its grid (the grid's
    order, points not trained yet as waiting)."""
    if not isinstance(store, (str, os.PathLike)) or not str(store):
        raise GansweepError(f"gansweep.report: store must be a folder's path, got {store!r}")
    if problem := path_problem(store):
        raise GansweepError(f"gansweep.report: store: {problem}")
    if storage is not None and not isinstance(storage, str):
        raise GansweepError(f"gansweep.report: storage must be a database URL, got {storage!r}")
    if isinstance(name_or_grid, dict):
        with _grid_file(name_or_grid, "gansweep.report") as (path, source):
            config: SweepConfig | None = load_config(path)
    elif isinstance(name_or_grid, (str, os.PathLike)):
        config = grid_or_name(str(name_or_grid))
    else:
        raise GansweepError(
            f"gansweep.report: give a sweep's name, a grid.yaml path or a grid dict, got {type(name_or_grid).__name__}"
        )
    if config is None:  # by name, no grid: open_study(create=False) never looks at the config
        settings = SweepSettings(None, "", str(name_or_grid), Path(store), storage=storage)  # type: ignore[arg-type]
        return report_frame(settings, None)
    settings = SweepSettings(config, "", config.name, Path(store), storage=storage)
    return report_frame(settings, plan_trials(config, TRAIN_SIZES[config.dataset]))


def report_frame(settings: SweepSettings, plans: list[TrialPlan] | None) -> pd.DataFrame:
    """The seed rows of `gansweep report --format json` (``tables.seed_records``): ``outcome`` good, bad or
    unclear (None until complete: ``state``), ``verdict`` the sentence, ``fid_mnist`` a number or None
    (NaN in the frame) where the judge could not read the samples (``readable`` says how much it read)."""
    study = open_study(settings, create=False)
    if study is None:
        where = redact(settings.storage) if settings.storage else settings.store
        raise GansweepError(
            f"no sweep named {settings.study_name!r} in {where}: run it first, or check "
            + ("storage=" if settings.storage else "store=")
        )
    frame = pd.DataFrame(seed_records(study_rows(study, plans)))
    if frame.empty:
        return frame
    # A column of None alone would be of objects: numbers, NaN where there is none, whatever the rows hold.
    return frame.astype({name: float for name in ("fid_mnist", "readable", "modes_covered")})


def _display_figures_as_images() -> None:
    """In IPython (Jupyter, Colab), a Figure that is a cell's value shows as a PNG. Matplotlib arranges
    that only for pyplot's figures under its inline backend; these are plain Figures."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, _png)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


@contextlib.contextmanager
def _grid_file(grid: Any, caller: str) -> Iterator[tuple[Path, str]]:
    """The grid as a file, and how messages name it: a path as it is; a dict written out as YAML into a
    temporary folder (so that every check of a grid.yaml applies), its errors naming ``grid`` and the
    field instead of that file, which is gone by the time they are read, and its lines, which the dict
    does not have."""
    if isinstance(grid, (str, os.PathLike)):
        yield Path(grid), str(grid)
        return
    if not isinstance(grid, dict):
        raise GansweepError(
            f"{caller}: the grid must be a grid.yaml path or a dict shaped like one, got {type(grid).__name__}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"  # its stem is the name when the dict gives none
        path.write_text(yaml.safe_dump(_plain(grid, "grid"), sort_keys=False))
        try:
            yield path, "grid"
        except GansweepError as error:
            raise type(error)(re.sub(rf"{re.escape(str(path))}(:\d+)?", "grid", str(error))) from None


def _plain(value: Any, where: str) -> Any:
    """``value`` in YAML's plain types: numpy numbers and arrays (what ``np.arange`` and ``np.logspace``
    give; pandas' and torch's through them) as Python's, a float32 by its shortest text (``float32(2e-4)`` is 2e-4, not 0.00019999999494757503),
    tuples as lists, paths as text. Anything else is refused, named by where it is in the grid."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if hasattr(value, "__array__") and not isinstance(value, (np.ndarray, np.generic)):
        value = np.asarray(value)  # a pandas Series or Index, a torch tensor
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _plain(value[()], where)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.floating):
        return float(np.format_float_positional(value, unique=True, trim="-"))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
    raise GansweepError(
        f"{where}: {shown} ({type(value).__name__}) is not a grid value; give numbers, text, lists and dicts"
    )
