"""MLflow tracking: one experiment per sweep, a parent run for the sweep, one child run per trial.

The store is explicit. By default it lives under the sweep's store folder (``mlruns/``):
``mlruns/mlflow.db`` (runs, params, metrics; SQLite) and ``mlruns/artifacts/`` (files). MLflow 3's own
default would be ``./mlflow.db`` in whatever folder you happen to be in. ``--tracking-uri`` points
elsewhere (an MLflow server, ``http://...``, or another database).

Metrics are sent with ``log_batch`` once per epoch (per-epoch means at step = epoch, and that epoch's
per-step losses as ``d_loss_per_step``, ``g_loss_per_step`` at step = global step): one ``log_metric`` call
costs ~5 ms on SQLite, a ``log_batch`` entry ~0.1 ms. Not ``step/d_loss``: MLflow's UI titles a chart by
the name's last part, and two charts called "d_loss" cannot be told apart. ``info_loss`` goes only to runs
of a model with a Q head (InfoGAN); elsewhere it is a flat 0.

A sweep's per-epoch calls (these metrics, the epoch checkpoint) go through a ``sending.Sender``: one
background thread per trial that makes them in order while the next epoch trains. A sweep's worker gives
its ``Tracker`` a ``sending.Patience``: its calls then wait out a store that does not answer, saying so.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import sqlalchemy

from gansweep.artifacts import sample_grid
from gansweep.errors import GansweepError, redact
from gansweep.mlruns import check_database, holds_database, one_run
from gansweep.sending import QUICK_HTTP, UNAVAILABLE, Patience, Sender, Unanswered, unreachable
from gansweep.trainer import Trainer, TrainerCallback

if TYPE_CHECKING:
    from mlflow import MlflowClient

SWEEP_ROLE = "sweep"
TRIAL_ROLE = "trial"
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
"""MLflow 3's UI opens an experiment without this tag in its GenAI view (traces, evaluations); with it,
in the classic one: runs, params, metrics."""
DESCRIPTION = "mlflow.note.content"
"""The tag MLflow's UI shows as a run's description."""


def _mlflow() -> ModuleType:
    """MLflow, quietened. Imported here, on first use, not with this module: `import mlflow` costs ~1 s,
    which the commands that never track (report, status, list) do not pay. It configures its loggers
    on import, so their levels are set after."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, value in QUICK_HTTP.items():
        os.environ.setdefault(name, value)
    # Set, not defaulted: MLflow prints a server's run and experiment URLs to stdout as they are, with
    # any password in them; gansweep's own lines name the runs, redacted.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    import mlflow
    import mlflow.entities
    import mlflow.exceptions

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # It logs a traceback for each database error it then raises: a locked or vanished database, which a
    # sweep waits out and says in one line (sending.Patience), or any other, which the sweep reports.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    return mlflow


class MissingArtifact(GansweepError):
    """The run exists but holds no such file (a sweep's own run, or a trial that has not got that far)."""


def download(tracking_uri: str, run_id: str, artifact: str, folder: Path) -> Path:
    """One artifact of any run in the store (no experiment needed). A store that does not answer,
    or holds no such run, is said so at once: MLflow would retry for minutes, then name neither."""
    check_tracking(tracking_uri)
    return _download(_mlflow().MlflowClient(tracking_uri=tracking_uri), tracking_uri, run_id, artifact, folder)


def _download(client: MlflowClient, tracking_uri: str, run_id: str, artifact: str, folder: Path) -> Path:
    """``download`` through a client of a store already checked."""
    mlflow = _mlflow()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        client.get_run(run_id)
    except mlflow.exceptions.MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise GansweepError(
                f"no run {run_id!r} in {redact(tracking_uri)}: check the run id (gansweep report lists them)"
            ) from None
    try:
        return Path(client.download_artifacts(run_id, artifact, str(folder)))
    except Exception as error:
        if getattr(error, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            raise MissingArtifact(f"run {run_id} in {redact(tracking_uri)} holds no {artifact}") from None
        reason = unreachable(error)  # a sweep waits that out (sending.Patience): said as such
        kind = GansweepError if reason is None else Unanswered
        raise kind(
            f"run {run_id} in {redact(tracking_uri)}: cannot fetch {artifact} ({reason or type(error).__name__})"
        ) from None


def run_tags(tracking_uri: str, run_id: str) -> dict[str, str]:
    """The tags of any run in the store."""
    try:
        return _mlflow().MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.tags
    except Exception as error:
        raise GansweepError(
            f"run {run_id} in {redact(tracking_uri)}: cannot read it ({type(error).__name__})"
        ) from None


class _Patient:
    """How a ``Tracker`` makes its calls: straight, or, once a sweep's worker gives it ``patience``,
    waiting out a store that does not answer; the default store's files are checked on the way."""

    uri: str
    patience: Patience | None
    """Set by a sweep's worker: its calls then wait out a store that does not answer, saying so."""
    artifact_root: Path | None
    _seen: set[Path]
    """The default store's files this tracker has seen: one gone now vanished (deleted, or unmounted)."""

    def _call(
        self,
        what: str,
        call: Callable[[], Any],
        guard: Callable[[], AbstractContextManager] | None = None,
        files: bool = False,
    ) -> Any:
        """``call()``, waiting out a store that does not answer when the worker gave this tracker patience;
        ``files``: the call reads or writes artifacts."""
        if self.patience is None:
            return call()

        def checked() -> Any:
            self._check_store(files)
            try:
                return call()
            except Exception:  # a folder that vanished during the call: waited out as before it, not a failure
                self._check_store(files)
                raise

        return self.patience.call(what, checked, guard)

    def gone(self) -> str | None:
        """What of the default store this tracker saw has vanished since (None: nothing, or not the default
        store): the reason to give for a call that failed, over what SQLite or SQLAlchemy said of it."""
        try:
            self._check_store(files=True)
        except Unanswered as error:
            return str(error)
        return None

    def _check_store(self, files: bool) -> None:
        """The default store's database (and, for ``files``, its artifacts folder) is still there: MLflow
        would make the folder again, empty (on the disk under a mount point that went away), and write a
        run's later files without its earlier ones; SQLite cannot write a deleted database (MLflow:
        "temporarily unavailable")."""
        if self.artifact_root is None:
            return
        parts = [(self.artifact_root.parent / "mlflow.db", Path.is_file)]
        parts += [(self.artifact_root, Path.is_dir)] if files else []
        for path, there in parts:
            if there(path):
                self._seen.add(path)
            elif path in self._seen:
                raise Unanswered(f"{path} is gone: deleted, or its disk unmounted")


class _Files(_Patient):
    """A tracker's calls that read or write a run's files: each checks, when the worker gave it patience,
    that the default store's artifacts folder is still there."""

    client: MlflowClient

    def fetch(self, run_id: str, artifact: str, folder: Path) -> Path:
        """``download`` from this tracker's store, waiting out a store that does not answer."""
        return self._call(
            f"fetching {artifact} of run {run_id[:8]}",
            lambda: _download(self.client, self.uri, run_id, artifact, folder),
            files=True,
        )

    def log_image(self, run_id: str, image: Any, key: str, step: int) -> None:
        """An image under ``key`` at ``step`` (MLflow's Image grid: a run's steps on a slider, runs side by
        side); MLflow keeps it under the run's ``images/``, with a small copy for the grid."""

        def upload() -> None:
            self.client.log_image(run_id, image, key=key, step=step, synchronous=True)

        self._call(f"uploading the {key} of epoch {step} to run {run_id[:8]}", upload, files=True)

    def log_artifacts(
        self,
        run_id: str,
        folder: Path,
        path: str | None = None,
        guard: Callable[[], AbstractContextManager] | None = None,
    ) -> None:
        """Every file in ``folder``; each try under ``guard()`` (a sweep defers Ctrl-C while one copies)."""

        def upload() -> None:
            self.client.log_artifacts(run_id, str(folder), path)

        self._call(f"uploading the files of run {run_id[:8]}", upload, guard, files=True)

    def artifact_names(self, run_id: str) -> set[str]:
        """The names of the files and folders at the top of the run's artifacts."""
        listed = self._call(
            f"listing the files of run {run_id[:8]}", lambda: self.client.list_artifacts(run_id), files=True
        )
        return {Path(a.path).name for a in listed}

    def log_artifact(self, run_id: str, file: Path) -> None:
        """One file, under its own name; a file of that name already there is replaced."""

        def upload() -> None:
            self.client.log_artifact(run_id, str(file))

        self._call(f"uploading {file.name} to run {run_id[:8]}", upload, files=True)


class Tracker(_Files):
    """A thin layer over ``MlflowClient`` that knows gansweep's run layout."""

    def __init__(
        self, tracking_uri: str, experiment: str, artifact_root: Path | None = None, create: bool = True
    ) -> None:
        mlflow = _mlflow()
        self.uri = tracking_uri
        self.patience = None
        self.artifact_root = artifact_root
        self._seen = set()
        check_tracking(tracking_uri)
        try:
            self.client: MlflowClient = mlflow.MlflowClient(tracking_uri=tracking_uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is not None:
                self.experiment_id = found.experiment_id
                if create and not EXPERIMENT_KIND.items() <= found.tags.items():  # a sweep started before
                    self.client.set_experiment_tag(self.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
            elif not create:
                raise GansweepError(
                    f"no sweep named {experiment!r} in {redact(tracking_uri)}: run it first, or check --store"
                )
            else:
                location = artifact_root.resolve().as_uri() if artifact_root else None
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=location, tags=EXPERIMENT_KIND
                )
        except mlflow.exceptions.MlflowException as error:
            raise GansweepError(
                f"tracking store {redact(tracking_uri)}: {redact(error.message, tracking_uri)}"
            ) from None
        except Exception as error:  # connection errors from servers and databases
            reason = unreachable(error)
            kind = GansweepError if reason is None else Unanswered
            reason = redact(reason or f"{type(error).__name__}: {error}", tracking_uri)
            raise kind(f"tracking store {redact(tracking_uri)} is unreachable: {reason}") from None
        if artifact_root is not None:  # there now and gone later: vanished, even before this tracker's first file
            self._check_store(files=True)

    download = staticmethod(download)
    run_tags = staticmethod(run_tags)

    def _runs(self, filter_string: str) -> list[Any]:
        active = _mlflow().entities.ViewType.ACTIVE_ONLY
        return self.client.search_runs([self.experiment_id], filter_string, active, max_results=50000)

    def finished_trial(self, key: str) -> tuple[str, dict[str, str]] | None:
        """The newest FINISHED run of point ``key`` in the sweep, with its tags, if there is one."""
        found = self._call(
            "looking for a finished run",
            lambda: self._runs(
                f"tags.`gansweep.role` = '{TRIAL_ROLE}' and tags.`gansweep.key` = '{key}' "
                "and attributes.status = 'FINISHED'"
            ),
        )
        return (found[0].info.run_id, found[0].data.tags) if found else None

    def running_trials(self) -> set[str]:
        """The ids of the sweep's trial runs still RUNNING."""
        return {
            r.info.run_id
            for r in self._runs(f"tags.`gansweep.role` = '{TRIAL_ROLE}' and attributes.status = 'RUNNING'")
        }

    def sweep_run(self, name: str, config_text: str) -> str:
        """The sweep's parent run, created on first use and reused by every later `gansweep run`."""
        found = self._runs(f"tags.`gansweep.role` = '{SWEEP_ROLE}'")
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            run_id = self.client.create_run(
                self.experiment_id, run_name=name, tags={"gansweep.role": SWEEP_ROLE}
            ).info.run_id
        self.client.log_text(run_id, config_text, "grid.yaml")  # the file as this run read it, edits included
        return run_id

    def tag(self, run_id: str, tags: dict[str, str]) -> None:
        self._call(f"tagging run {run_id[:8]}", lambda: self._set_tags(run_id, tags))

    def _set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """All of ``tags`` in one call (a call per tag was a round trip each to a server)."""
        if tags:
            RunTag = _mlflow().entities.RunTag
            self.client.log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])

    def describe(self, run_id: str, text: str) -> None:
        """``text`` (markdown) as the run's description, shown on its page in the UI."""
        self.client.set_tag(run_id, DESCRIPTION, text)

    def finish_sweep(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def start_trial(self, parent_id: str, name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        Param = _mlflow().entities.Param
        tags = {"mlflow.parentRunId": parent_id, "gansweep.role": TRIAL_ROLE, **tags}
        run = self._call(
            f"starting the run of {name}",
            lambda: self.client.create_run(self.experiment_id, run_name=name, tags=tags),
        )
        params_batch = [Param(k, str(v)) for k, v in params.items()]
        self._call(f"starting the run of {name}", lambda: self.client.log_batch(run.info.run_id, params=params_batch))
        return run.info.run_id

    def log_metrics(self, run_id: str, values: list[tuple[str, float, int]], timestamp: int | None = None) -> None:
        """``values`` as (name, value, step), at ``timestamp`` (ms; default now): a call made again after
        an outage sends the same entries, which MLflow then keeps once."""
        Metric = _mlflow().entities.Metric
        now = timestamp or int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v, step in values]
        self._call(f"sending metrics to run {run_id[:8]}", lambda: self.client.log_batch(run_id, metrics=metrics))

    def end_trial(
        self, run_id: str, status: str, tags: dict[str, str] | None = None, only_if_running: bool = False
    ) -> None:
        def end() -> None:
            if only_if_running and self.client.get_run(run_id).info.status != "RUNNING":
                return
            self._set_tags(run_id, tags or {})
            self.client.set_terminated(run_id, status=status)

        self._call(f"ending run {run_id[:8]} as {status}", end)


def resolve_run(tracking_uri: str, given: str) -> str:
    """The id of the run ``given`` names: its whole id, or a prefix of it that one run of the store has
    (`report`, `status` and `run` print 8 characters). A prefix several runs share names none: they are
    listed. One that no run has is returned as given, for the caller to say so."""
    if re.fullmatch(r"[0-9a-f]{32}", given) or not re.fullmatch(r"[0-9a-fA-F]{1,31}", given):
        return given
    mlflow = _mlflow()
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    every = mlflow.entities.ViewType.ALL
    experiments = [e.experiment_id for e in client.search_experiments(view_type=every)]
    runs = client.search_runs(experiments, "", every, max_results=50000) if experiments else []
    return one_run(given, [r.info.run_id for r in runs], tracking_uri)


def experiment_id(tracking_uri: str, name: str | None = None) -> str | None:
    """The id of sweep ``name``'s experiment, or of the newest sweep's when no name is given (None: none)."""
    client = _mlflow().MlflowClient(tracking_uri=tracking_uri)
    if name is not None:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise GansweepError(f"no sweep named {name!r} in {redact(tracking_uri)}: check --name and --store")
        return found.experiment_id
    newest = client.search_experiments(
        filter_string="name != 'Default'", order_by=["creation_time DESC"], max_results=1
    )
    return newest[0].experiment_id if newest else None


DATABASES = ("postgresql", "mysql", "mssql", "oracle")
"""Tracking URIs checked as databases; other schemes (databricks, a plugin's) are MLflow's to open."""


def check_tracking(uri: str, timeout: int = 10, read_only: bool = False) -> None:
    """Fails fast, in one line, on a tracking server or database that does not answer: MLflow itself
    retries for minutes, logging each attempt. A folder (MLflow's file store) is refused unless
    MLFLOW_ALLOW_FILE_STORE allows it, as MLflow 3 refuses it in a paragraph. For a command that only
    reads (``read_only``), an SQLite file must exist: MLflow would create an empty one, then find nothing."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    folder = scheme == "file" or (not scheme and not uri.startswith("databricks"))  # "databricks" is a URI alone
    if folder and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise GansweepError(
            f"--tracking-uri {redact(uri)} is a folder (MLflow's file store), which MLflow 3 opens only with "
            "MLFLOW_ALLOW_FILE_STORE=true; give sqlite:///PATH/mlflow.db or http://HOST:PORT"
        )
    if scheme == "sqlite" and read_only and uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
        if not holds_database(database):
            raise GansweepError(f"no MLflow store at {database}: check --tracking-uri (nothing was created there)")
        check_database(database)
    if uri.startswith(("http://", "https://")):
        _check_server(uri, timeout)
    elif uri.split("://", 1)[0].split("+", 1)[0] in DATABASES:
        _check_database(uri, timeout)


API_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"
"""Asked after ``/health``: a server whose database is locked or gone answers the one and stalls on the
other, and MLflow's client waits on it for minutes (120 s a request, with retries)."""


def _check_server(uri: str, timeout: int) -> None:
    base = re.sub(r"//[^/]*@", "//", uri.rstrip("/"), count=1)  # urllib takes no user:password@
    probes = {
        "/health": "is unreachable ({}); is the MLflow server running?",
        API_PROBE: "answers /health but not its API ({}); is the MLflow server's database locked or down?",
    }
    for path, trouble in probes.items():
        try:
            urllib.request.urlopen(base + path, timeout=timeout).close()
        except urllib.error.HTTPError as error:  # it answered; MLflow says what is wrong with a request (a login)
            if error.code in UNAVAILABLE:  # a proxy whose server is down, or one that is starting
                raise Unanswered(f"--tracking-uri {redact(uri)} {trouble.format(f'HTTP {error.code}')}") from None
        except (http.client.InvalidURL, ValueError):  # its text may quote a piece of a password
            raise GansweepError(f"--tracking-uri {redact(uri)} is not a URL urllib can read") from None
        except OSError as error:
            reason = redact(str(getattr(error, "reason", error)), uri)
            raise Unanswered(f"--tracking-uri {redact(uri)} {trouble.format(reason)}") from None


def connect_args(url: str, timeout: int = 10) -> dict[str, Any]:
    """SQLAlchemy ``connect_args`` for a database URL: a connection timeout where the driver takes one,
    and SQLite's lock wait (several processes write the same file)."""
    scheme = url.split("://", 1)[0]
    if scheme.startswith("sqlite"):
        return {"timeout": 60}
    if scheme in ("postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        return {"connect_timeout": timeout}
    return {}


def database_error(flag: str, url: str, error: Exception) -> GansweepError:
    """One line for a database that cannot be opened (``--storage`` or ``--tracking-uri``)."""
    if isinstance(error, ImportError):
        return GansweepError(
            f"{flag} {redact(url)}: its database driver is not installed "
            "(PostgreSQL: pip install 'gansweep[postgres]'; MySQL: pip install pymysql)"
        )
    reason = redact(str(getattr(error, "orig", None) or error).strip().splitlines()[0], url)
    return GansweepError(f"{flag} {redact(url)}: cannot open ({reason})")


def _check_database(uri: str, timeout: int) -> None:
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=connect_args(uri, timeout))
        with engine.connect():
            pass
        engine.dispose()
    except Exception as error:  # a missing driver, the URL's own parse errors, a refused connection
        raise database_error("--tracking-uri", uri, error) from None


SAMPLES = "samples"
"""The image key of each epoch's sample grid in MLflow (the fixed latents' samples; step = epoch)."""


class MlflowEpochLogger(TrainerCallback):
    """Sends each epoch's means and its per-step losses to the trial's run in one ``log_batch``, and its
    sample grid as the image ``SAMPLES`` at step = epoch (epoch 0's with the first: before training),
    made by ``sender`` while the next epoch trains. A trial resumed from a checkpoint first sends the
    epochs that checkpoint restored: the run the report links carries the whole history, not only the
    epochs trained in it (the killed run keeps its own copy of the earlier ones)."""

    def __init__(self, tracker: Tracker, run_id: str, sender: Sender) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self.sender = sender
        self.imaged = 0
        """Epochs whose samples are on their way (the history holds epoch 0's first)."""
        self.seconds = 0.0
        """Wall time the training loop spent here: gathering the values, and waiting when the sender's
        queue was full (the benchmark reports it as a share of the trial)."""

    def on_start(self, trainer: Trainer) -> None:
        for record in trainer.history.epochs:  # restored from a checkpoint: none for a fresh trial
            first = (int(record["epoch"]) - 1) * trainer.steps_per_epoch
            self._send(trainer, record, first)

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        started = time.perf_counter()
        self._send(trainer, record, len(trainer.history.steps["d_loss"]) - trainer.steps_per_epoch)
        self.seconds += time.perf_counter() - started

    def _send(self, trainer: Trainer, record: dict[str, float], first: int) -> None:
        """One epoch's ``record`` and its per-step losses, the steps from ``first`` (0-based) on."""
        epoch = int(record["epoch"])
        skip = {"epoch"} if trainer.spec.conditioning == "info" else {"epoch", "info_loss"}
        values = [(key, float(value), epoch) for key, value in record.items() if key not in skip]
        for key in ("d_loss", "g_loss"):  # per-step D(x)/D(G(z)) stay in steps.csv: they doubled tracking's cost
            series = trainer.history.steps[key][first : first + trainer.steps_per_epoch]
            values += [(f"{key}_per_step", value, first + i + 1) for i, value in enumerate(series)]
        shown, samples = self.imaged, trainer.history.samples[self.imaged : epoch + 1]  # epoch 0's with the first
        self.imaged += len(samples)
        sent = int(time.time() * 1000)  # one timestamp, should the call be made again after an outage
        self.sender.send(lambda: self._upload(values, sent, shown, samples))

    def _upload(self, values: list[tuple[str, float, int]], sent: int, first: int, samples: list[Any]) -> None:
        """On the tracking thread: the grids are drawn there too, off the training loop."""
        self.tracker.log_metrics(self.run_id, values, sent)
        for epoch, images in enumerate(samples, start=first):
            self.tracker.log_image(self.run_id, sample_grid(images), SAMPLES, epoch)
