"""MLflow tracking: one experiment per sweep, a parent run for the sweep, one child run per trial.

The store is explicit. By default it lives under the sweep's store folder (``mlruns/``):
``mlruns/mlflow.db`` (runs, params, metrics; SQLite) and ``mlruns/artifacts/`` (files). MLflow 3's own
default would be ``./mlflow.db`` in whatever folder you happen to be in. ``--tracking-uri`` points
elsewhere (an MLflow server, ``http://...``, or another database).

Metrics are sent with ``log_batch`` once per epoch (per-epoch means at step = epoch, and that epoch's
per-step losses under ``step/...`` at step = global step): one ``log_metric`` call costs ~5 ms on
SQLite, a ``log_batch`` entry ~0.1 ms.
"""

from __future__ import annotations

import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from gansweep.errors import GansweepError, redact
from gansweep.trainer import Trainer, TrainerCallback

if TYPE_CHECKING:
    from mlflow import MlflowClient

SWEEP_ROLE = "sweep"
TRIAL_ROLE = "trial"


def default_tracking_uri(store: Path) -> str:
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


def _mlflow() -> ModuleType:
    """MLflow, quietened. Imported here, on first use, not with this module: `import mlflow` costs ~1 s,
    which the commands that never track (report, status, list) do not pay. It configures its loggers
    on import, so their levels are set after."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    import mlflow.entities
    import mlflow.exceptions

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


class Tracker:
    """A thin layer over ``MlflowClient`` that knows gansweep's run layout."""

    def __init__(
        self, tracking_uri: str, experiment: str, artifact_root: Path | None = None, create: bool = True
    ) -> None:
        mlflow = _mlflow()
        self.uri = tracking_uri
        if tracking_uri.startswith(("http://", "https://")):
            check_server(tracking_uri)
        try:
            self.client: MlflowClient = mlflow.MlflowClient(tracking_uri=tracking_uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is not None:
                self.experiment_id = found.experiment_id
            elif not create:
                raise GansweepError(
                    f"no sweep named {experiment!r} in {redact(tracking_uri)}: run it first, or check --store"
                )
            else:
                location = artifact_root.resolve().as_uri() if artifact_root else None
                self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        except mlflow.exceptions.MlflowException as error:
            raise GansweepError(f"tracking store {redact(tracking_uri)}: {error.message}") from None
        except Exception as error:  # connection errors from servers and databases
            raise GansweepError(
                f"tracking store {redact(tracking_uri)} is unreachable: {type(error).__name__}: {error}"
            ) from None

    @staticmethod
    def download(tracking_uri: str, run_id: str, artifact: str, folder: Path) -> Path:
        """One artifact of any run in the store (no experiment needed)."""
        client = _mlflow().MlflowClient(tracking_uri=tracking_uri)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return Path(client.download_artifacts(run_id, artifact, str(folder)))
        except Exception as error:
            raise GansweepError(
                f"run {run_id} in {redact(tracking_uri)}: cannot fetch {artifact} ({type(error).__name__})"
            ) from None

    def _runs(self, filter_string: str) -> list[Any]:
        active = _mlflow().entities.ViewType.ACTIVE_ONLY
        return self.client.search_runs([self.experiment_id], filter_string, active, max_results=50000)

    def sweep_run(self, name: str, config_text: str) -> str:
        """The sweep's parent run, created on first use and reused by every later `gansweep run`."""
        found = self._runs(f"tags.`gansweep.role` = '{SWEEP_ROLE}'")
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags={"gansweep.role": SWEEP_ROLE})
        self.client.log_text(run.info.run_id, config_text, "grid.yaml")
        return run.info.run_id

    def finish_sweep(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def start_trial(self, parent_id: str, name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        Param = _mlflow().entities.Param
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={"mlflow.parentRunId": parent_id, "gansweep.role": TRIAL_ROLE, **tags},
        )
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def log_metrics(self, run_id: str, values: list[tuple[str, float, int]]) -> None:
        Metric = _mlflow().entities.Metric
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v, step in values])

    def log_artifacts(self, run_id: str, folder: Path, path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(folder), path)

    def log_artifact(self, run_id: str, file: Path) -> None:
        """One file, under its own name; a file of that name already there is replaced."""
        self.client.log_artifact(run_id, str(file))

    def end_trial(
        self, run_id: str, status: str, tags: dict[str, str] | None = None, only_if_running: bool = False
    ) -> None:
        if only_if_running and self.client.get_run(run_id).info.status != "RUNNING":
            return
        for key, value in (tags or {}).items():
            self.client.set_tag(run_id, key, value)
        self.client.set_terminated(run_id, status=status)


def check_server(uri: str, timeout: float = 10) -> None:
    """Fails fast on a tracking server that does not answer (MLflow itself retries for minutes)."""
    try:
        health = re.sub(r"//[^/@]*@", "//", uri.rstrip("/")) + "/health"  # urllib takes no user:password@
        urllib.request.urlopen(health, timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # it answered; MLflow reports what is wrong with the request
    except OSError as error:
        reason = getattr(error, "reason", error)
        raise GansweepError(
            f"--tracking-uri {redact(uri)} is unreachable ({reason}); is the MLflow server running?"
        ) from None


class MlflowEpochLogger(TrainerCallback):
    """Sends each epoch's means and its per-step losses to the trial's run in one ``log_batch``."""

    def __init__(self, tracker: Tracker, run_id: str) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self.seconds = 0.0
        """Wall time spent in tracking calls (the benchmark reports it as a share of the trial)."""

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        started = time.perf_counter()
        epoch = int(record["epoch"])
        values = [(key, float(value), epoch) for key, value in record.items() if key != "epoch"]
        n_steps = trainer.steps_per_epoch
        first = len(trainer.history.steps["d_loss"]) - n_steps
        for key in ("d_loss", "g_loss"):  # per-step D(x)/D(G(z)) stay in steps.csv: they doubled tracking's cost
            series = trainer.history.steps[key][first:]
            values += [(f"step/{key}", value, first + i + 1) for i, value in enumerate(series)]
        self.tracker.log_metrics(self.run_id, values)
        self.seconds += time.perf_counter() - started
