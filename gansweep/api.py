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

import importlib.util
import io
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from matplotlib.figure import Figure

from gansweep.artifacts import HISTORY_FILE, SAMPLES_FILE, read_history, sample_grid
from gansweep.commands.run import check_devices, sweep_report, sweep_settings, writable_store
from gansweep.config import TrialPlan, load_config, plan_trials
from gansweep.data import TRAIN_SIZES, load_dataset
from gansweep.diagnostics import diagnose
from gansweep.errors import GansweepError
from gansweep.options import STORE, RunOptions
from gansweep.pictures import loss_figure
from gansweep.progress import STDERR, SweepProgress
from gansweep.sweep import SweepResult, SweepSettings, open_study, point_status, run_sweep
from gansweep.tables import study_rows
from gansweep.tracking import Tracker


@dataclass
class Sweep:
    """A sweep run from Python: its settings, its plans and what the last ``run`` did."""

    settings: SweepSettings
    plans: list[TrialPlan]
    """The grid's plans (``result.plans`` adds the completed search trials)."""
    result: SweepResult

    def report(self) -> pd.DataFrame:
        """One row per trial, in the grid's order: what ``gansweep report --format json`` prints."""
        return report_frame(self.settings, self.result.plans)

    def trials(self) -> pd.DataFrame:
        """One row per trial: state, worker, epoch, detail, run id (``gansweep status --json``)."""
        study = open_study(self.settings, create=False)
        return pd.DataFrame(point_status(study.get_trials(deepcopy=False), self.plans, self.settings.config.n_search))

    def show(self, run: str) -> list[Figure]:
        """A trial's last sample grid and its loss curves (flag onsets marked), from its MLflow run."""
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
    them (store, name, storage, tracking_uri, workers, devices, trials_per_device, heartbeat,
    retry_failed); a dict ``grid`` is a grid.yaml's content (its ``name`` defaults to "sweep").

    One worker in this process unless ``workers`` says otherwise (the command's default, "auto", may
    start worker processes, and a script that calls this without ``if __name__ == "__main__":`` would
    start its own copy in each of them)."""
    unknown = set(options) - {f.name for f in fields(RunOptions)}
    if unknown:
        allowed = ", ".join(f.name for f in fields(RunOptions))
        raise GansweepError(f"gansweep.run: unknown option {', '.join(sorted(unknown))}; it takes: {allowed}")
    chosen = RunOptions(**{"workers": 1, **options, "store": Path(options.get("store", RunOptions.store))})
    with tempfile.TemporaryDirectory() as tmp:
        settings = sweep_settings(_grid_file(grid, Path(tmp)), chosen)
    config = settings.config
    plans = plan_trials(config, TRAIN_SIZES[config.dataset], str(grid if not isinstance(grid, dict) else "grid"))
    check_devices(settings, "devices=" if chosen.devices else "device:")
    writable_store(settings)
    load_dataset(config.dataset, config.data_dir)  # fail on missing data before any store is touched
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
    if isinstance(name_or_grid, dict) or Path(name_or_grid).is_file():
        with tempfile.TemporaryDirectory() as tmp:
            config = load_config(_grid_file(name_or_grid, Path(tmp)))
        settings = SweepSettings(config, "", config.name, Path(store), storage=storage)
        return report_frame(settings, plan_trials(config, TRAIN_SIZES[config.dataset]))
    # By name, no grid: open_study(create=False) never looks at the config.
    settings = SweepSettings(None, "", str(name_or_grid), Path(store), storage=storage)  # type: ignore[arg-type]
    return report_frame(settings, None)


def report_frame(settings: SweepSettings, plans: list[TrialPlan] | None) -> pd.DataFrame:
    study = open_study(settings, create=False)
    if study is None:
        raise GansweepError(
            f"no sweep named {settings.study_name!r} in {settings.store}: run it first, or check store="
        )
    rows = study_rows(study, plans)
    return pd.DataFrame([{**asdict(r), "outcome": r.outcome} for r in rows])


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


def _grid_file(grid: str | Path | dict[str, Any], folder: Path) -> Path:
    """The grid as a file: a path as it is, a dict written out as YAML (so errors name its fields)."""
    if not isinstance(grid, dict):
        return Path(grid)
    path = folder / "sweep.yaml"  # its stem is the name when the dict gives none
    path.write_text(yaml.safe_dump(json.loads(json.dumps(grid)), sort_keys=False))
    return path
