"""The Optuna side of a sweep's state: the storage, the study, the locks and the heartbeat."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import TrialState
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from gansweep.config import SweepConfig
from gansweep.errors import GansweepError
from gansweep.sweep._optuna import has_heartbeats
from gansweep.sweep._queue import requeue_stale
from gansweep.sweep._settings import SweepSettings
from gansweep.tracking import connect_args, database_error


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def repair_journal(path: Path) -> int:
    """Cuts a journal's torn last line (a crash or a full disk mid-write) and returns the bytes dropped.
    Optuna skips such a line when it reads, but its next append would land on it and leave a line that
    no later read can parse. Run only by the one `gansweep run` that holds the sweep's lock."""
    if not path.is_file():
        return 0
    lock = JournalFileOpenLock(str(path))  # another sweep of this store may be appending right now
    lock.acquire()
    try:
        data = path.read_bytes()  # Optuna reads it whole at every open anyway
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            with path.open("rb+") as journal:
                journal.truncate(keep)
    finally:
        lock.release()
    return len(data) - keep


def open_storage(settings: SweepSettings, create: bool = True):
    """The Optuna storage: the RDB URL given (with heartbeats), or the journal file under the store
    folder (None when ``create`` is false and there is none). A journal that Optuna cannot replay is
    refused, in one line that says which line is damaged and how to keep the good ones."""
    _quiet_optuna()
    if settings.storage:
        return _open_rdb(settings) if create or _holds_studies(settings.storage) else None
    path = settings.journal
    if not create and not path.exists():
        return None
    check_journal(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = _CountingBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    try:
        return optuna.storages.JournalStorage(backend)
    except Exception as error:  # a line that reads as JSON but is no operation Optuna knows how to replay
        raise _damaged(path, backend.replayed - 1, f"{type(error).__name__}: {error}") from None


class _CountingBackend(JournalFileBackend):
    """The journal file, counting the lines Optuna has read: when replaying one fails, ``replayed`` says which."""

    replayed = 0

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        self.replayed = log_number_from
        for log in super().read_logs(log_number_from):
            self.replayed += 1
            yield log


def check_journal(path: Path) -> None:
    """Every whole line of the journal is a JSON object (a torn last line, without its newline, is the
    one exception: ``repair_journal`` cuts it). Optuna would stop at a bad line with a traceback, or, at
    a bad last line, skip it and append after it, making it a bad line in the middle."""
    if path.exists() and not path.is_file():
        raise GansweepError(
            f"store {path.parent}: {path.name} is not a file (a folder?); nothing was changed. Move it aside "
            f"(mv {path} {path}.old) and run again: {_REBUILT}"
        )
    try:
        lines = path.read_bytes().split(b"\n")[:-1] if path.exists() else []  # [-1]: after the last newline
    except OSError as error:
        raise GansweepError(f"store {path.parent}: cannot read {path.name} ({error.strerror})") from None
    for number, line in enumerate(lines):
        try:
            reason = None if isinstance(json.loads(line), dict) else "not a JSON object"
        except UnicodeDecodeError:
            reason = "not UTF-8 text"
        except ValueError:
            reason = "not JSON"
        if reason:
            raise _damaged(path, number, reason, len(lines))


_REBUILT = "each grid point whose run finished is taken from the runs in mlflow.db, not trained again"


def _damaged(path: Path, intact: int, reason: str, total: int | None = None) -> GansweepError:
    """The one line for a journal whose line ``intact + 1`` cannot be read: what, what was kept, the way out."""
    where = f"line {intact + 1}" + (f" of {total}" if total else "")
    head = f"store {path.parent}: {path.name} {where} is damaged ({reason}); nothing was changed."
    if intact == 0:
        return GansweepError(
            f"{head} Nothing before it to keep: move it aside (mv {path} {path}.damaged) and run again: {_REBUILT}"
        )
    return GansweepError(
        f"{head} Its first {intact} line(s) are intact: keep them (mv {path} {path}.damaged && head -n {intact} "
        f"{path}.damaged > {path}) and run again: for what the later lines held, {_REBUILT}"
    )


def _holds_studies(url: str) -> bool:
    """Whether the database at ``url`` holds Optuna's tables, asked without creating anything: Optuna
    makes its tables in any database it opens, and SQLite the file itself, so a read-only command
    (status, report, a dry run) pointed at a mistyped ``sqlite:///`` path left an empty store there."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:") or not Path(database).is_file() or not Path(database).stat().st_size:
                return False
        engine = sqlalchemy.create_engine(url, connect_args=connect_args(url))
        try:
            return sqlalchemy.inspect(engine).has_table("studies")
        finally:
            engine.dispose()
    except Exception as error:  # a missing driver, a refused connection, a wrong password
        raise database_error("--storage", url, error) from None


def _open_rdb(settings: SweepSettings):
    url = settings.storage
    assert url is not None
    try:
        for attempt in range(3):
            try:
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"connect_args": connect_args(url)},
                    heartbeat_interval=settings.heartbeat,
                    grace_period=settings.grace_period,
                    heartbeat_stale_trial_callback=requeue_stale,
                )
            except (IntegrityError, ProgrammingError):  # workers creating Optuna's tables in an empty database at once
                if attempt == 2:
                    raise
                time.sleep(1 + attempt)
    except Exception as error:  # a missing driver, a refused connection, a wrong password
        raise database_error("--storage", url, error) from None


def _sampler(config: SweepConfig, worker: int):
    if config.search is None:
        return None
    seed = config.seed_list[0] * 1000 + worker  # parallel workers must not propose identical points
    if config.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def open_study(settings: SweepSettings, create: bool = True, worker: int = 0, storage: Any = None):
    """The sweep's study, created on first use; None when ``create`` is false and there is none."""
    storage = storage or open_storage(settings, create)
    if storage is None:
        return None
    if not create:
        try:
            return optuna.load_study(study_name=settings.study_name, storage=storage)
        except KeyError:
            return None
    direction = settings.config.objective.direction
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=storage,
        load_if_exists=True,
        direction=direction,
        sampler=_sampler(settings.config, worker),
    )
    if study.direction.name.lower() != direction:
        raise GansweepError(
            f"study {settings.study_name!r} was created to {study.direction.name.lower()}; "
            f"objective.direction {direction!r} needs another --name"
        )
    if study.metric_names is None:  # the dashboard then says fid_mnist, not "Objective 0"
        study.set_metric_names([settings.config.objective.metric])
    return study


class SweepLock:
    """With the default (journal) storage, one `gansweep run` per sweep and store at a time: its
    workers are then the only ones, so trials left RUNNING at start-up are known to be dead."""

    def __init__(self, store: Path, study_name: str) -> None:
        self.path = store / f"{study_name}.lock"
        if self.path.exists() and not self.path.is_file():
            raise GansweepError(
                f"store {store}: {self.path.name} is not a file (a folder?); nothing was changed. Move it aside "
                f"(mv {self.path} {self.path}.old) and run again"
            )
        try:
            store.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("a+")
        except OSError as error:
            raise GansweepError(f"store folder {store} is not writable ({error.strerror}); pass --store DIR") from None

    def __enter__(self) -> SweepLock:
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            owner = self.file.read().strip() or "another process"
            raise GansweepError(
                f"sweep {self.path.stem!r} is already running in this store ({owner}); wait for it or stop it "
                "first, or share a sweep between processes with --storage (see README: several machines)"
            ) from None
        self.file.truncate(0)
        self.file.write(f"pid {os.getpid()}")
        self.file.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.truncate(0)
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


@contextmanager
def bookkeeping_lock(settings: SweepSettings, storage: Any) -> Iterator[None]:
    """Serialises a sweep's bookkeeping (queueing points, creating the parent run) between all
    processes that share it: a PostgreSQL advisory lock (released by the server if the holder dies),
    MySQL's GET_LOCK, or a file lock beside a SQLite database. The journal store needs none: its
    `SweepLock` already admits one run."""
    if not settings.shared:
        yield
        return
    dialect = storage.engine.dialect.name
    name = f"gansweep:{settings.study_name}"
    if dialect in ("postgresql", "mysql"):
        take, release = {
            "postgresql": ("SELECT pg_advisory_lock(hashtext(:name))", "SELECT pg_advisory_unlock(hashtext(:name))"),
            "mysql": ("SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)"),
        }[dialect]
        with storage.engine.connect() as connection:
            connection.execute(text(take), {"name": name})
            try:
                yield
            finally:
                connection.execute(text(release), {"name": name})
        return
    database = storage.engine.url.database
    path = (
        Path(database + ".gansweep-lock")
        if database and database != ":memory:"
        else settings.store / f"{settings.study_name}.queue-lock"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


class Heartbeat:
    """Records a trial's heartbeat in the RDB storage every ``interval`` seconds from a thread, and
    notices when the trial has been taken over (another worker judged this one dead: a paused
    machine, a cut network). Does nothing for the journal store, which has no heartbeats."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if has_heartbeats(storage):
            self._thread = threading.Thread(target=self._beat, args=(storage, trial_id, interval), daemon=True)

    def __enter__(self) -> Heartbeat:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self, storage: Any, trial_id: int, interval: float) -> None:
        while True:
            try:
                storage.record_heartbeat(trial_id)
                if storage.get_trial(trial_id).state != TrialState.RUNNING:
                    self.lost.set()
                    return
            except Exception:  # a database hiccup: the grace period decides, not one failed beat
                pass
            if self._stop.wait(interval):
                return
