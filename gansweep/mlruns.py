"""The default tracking store on disk: ``mlruns/mlflow.db`` (SQLite) beside ``mlruns/artifacts/``, read and
checked with ``sqlite3`` alone (no MLflow import): whether a file is such a database, which runs it holds, and
pointing a store copied from elsewhere at its own artifacts folder."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from gansweep.errors import GansweepError, redact


def default_tracking_uri(store: Path) -> str:
    """The MLflow URI of the default store in ``store``. Its mlflow.db, if there is one, is checked
    (``check_database``); a store copied or moved from elsewhere is then told where its artifacts are
    now (``relocate``): MLflow records absolute artifact locations."""
    check_database(store / "mlflow.db")
    relocate(store)
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


SQLITE_HEADER = b"SQLite format 3\x00"


def check_database(path: Path) -> None:
    """A present mlflow.db is an SQLite file as long as its header says (read from its first 100 bytes,
    not the whole file): random bytes or a cut copy fail here, in one line, instead of in MLflow's
    first query, or in a trial's. Damage deeper inside shows when SQLite reads it (``relocate``)."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_file():
        raise damaged_database(path, "not a file")
    with path.open("rb") as f:
        header = f.read(100)
    size = path.stat().st_size
    if not header:
        return  # an empty file is an empty database to SQLite (MLflow creates its tables in it)
    if not header.startswith(SQLITE_HEADER) or len(header) < 100:
        raise damaged_database(path, "not an SQLite database")
    page = int.from_bytes(header[16:18], "big")
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] == header[92:96] and size < (65536 if page == 1 else page) * pages:  # the count is valid
        raise damaged_database(path, f"cut short: {size:,} of {(65536 if page == 1 else page) * pages:,} bytes")


def holds_database(path: Path) -> bool:
    """Whether a read-only command has a store at ``path``: MLflow would make its tables in a missing or
    empty file (a zero-byte mlflow.db grew to 954 KB under ``diagnose``); a folder there is for
    ``check_database`` to name."""
    return path.exists() and not (path.is_file() and path.stat().st_size == 0)


def damaged_database(path: Path, reason: str) -> GansweepError:
    """The one line for a damaged mlflow.db: what, what was kept, the way out."""
    return GansweepError(
        f"store {path.parent}: {path.name} is damaged ({reason}); nothing was changed: the sweep's results "
        f"are also in {path.parent / 'optuna.journal'} (gansweep report and status read them) and the runs' "
        f"files in {path.parent / 'artifacts'}. Restore {path.name} from a backup, or move it and "
        "optuna.journal aside to train the sweep afresh"
    )


def missing_runs(store: Path, run_ids: list[str]) -> list[str]:
    """Those of ``run_ids`` that the default store's mlflow.db does not hold (all when there is none)."""
    database = store / "mlflow.db"
    check_database(database)
    if not run_ids:
        return []
    if not database.is_file():
        return run_ids
    try:
        with contextlib.closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "runs" not in tables:
                return run_ids
            marks = ",".join("?" * len(run_ids))
            held = {r for (r,) in db.execute(f"SELECT run_uuid FROM runs WHERE run_uuid IN ({marks})", run_ids)}
    except sqlite3.DatabaseError as error:
        raise damaged_database(database, str(error)) from None
    return [r for r in run_ids if r not in held]


def relocate(store: Path) -> int:
    """Points every gansweep experiment of ``store``'s mlflow.db whose artifacts were recorded under
    another folder (the store was copied or moved) at ``store/artifacts``, its runs too; returns how many
    experiments moved. Without this a copy reads, and writes, the original's artifacts."""
    database = store / "mlflow.db"
    if not database.is_file():
        return 0
    here = (store / "artifacts").resolve().as_uri()
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=60)) as db, db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'experiments'").fetchall():
                return 0  # empty: MLflow has not made its tables yet
            moved = [
                (experiment, location)
                for experiment, location in db.execute("SELECT experiment_id, artifact_location FROM experiments")
                if location.startswith("file://") and location.endswith("/artifacts") and location != here
            ]
            for experiment, location in moved:
                db.execute(
                    "UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?)"
                    " WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                    (here, len(location) + 1, experiment, len(location) + 1, location + "/"),
                )
                db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (here, experiment))
    except sqlite3.OperationalError as error:
        if "locked" in str(error):
            raise
        raise damaged_database(database, str(error)) from None
    except sqlite3.DatabaseError as error:  # not a database, a malformed page
        raise damaged_database(database, str(error)) from None
    # MLflow keeps each run's artifact location per process, by run id, and a copy has the same ids. The
    # cache is private: should it move, test_a_copied_store_is_its_own_and_outlives_the_original fails.
    if moved:
        cache = getattr(sys.modules.get("mlflow.tracking._tracking_service.utils"), "_artifact_repos_cache", None)
        if cache is not None:
            cache.clear()
    return len(moved)


def stored_run(store: Path, run_id: str) -> tuple[dict[str, str], Path] | None:
    """Run ``run_id`` (or the one run whose id it begins, as ``resolve_run``) of the default store in
    ``store``, read only: its tags, and the folder of its artifacts in this store (in a copy, the copy's own,
    as ``relocate`` would point it); None where there is no such run. For the read-only commands, which must
    leave a store as they found it, refused or not."""
    database = store / "mlflow.db"
    check_database(database)
    try:
        with contextlib.closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchall():
                return None  # empty: MLflow has not made its tables yet
            if re.fullmatch(r"[0-9a-fA-F]{1,31}", run_id):
                ids = [i for (i,) in db.execute("SELECT run_uuid FROM runs")]
                run_id = one_run(run_id, ids, f"sqlite:///{database.resolve()}")
            found = db.execute(
                "SELECT r.artifact_uri, e.artifact_location FROM runs r JOIN experiments e"
                " ON r.experiment_id = e.experiment_id WHERE r.run_uuid = ?",
                (run_id,),
            ).fetchone()
            tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)).fetchall())
    except sqlite3.DatabaseError as error:
        raise damaged_database(database, str(error)) from None
    if found is None:
        return None
    artifacts, location = found
    if location.startswith("file://") and location.endswith("/artifacts") and artifacts.startswith(location + "/"):
        return tags, (store / "artifacts").resolve() / urllib.request.url2pathname(artifacts[len(location) + 1 :])
    return tags, Path(urllib.request.url2pathname(urllib.parse.urlparse(artifacts).path))


def one_run(given: str, ids: list[str], where: str) -> str:
    """The one of ``ids`` that ``given`` begins (or ``given`` where none does); several: they are listed."""
    found = sorted({i for i in ids if i.startswith(given.lower())})
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise GansweepError(
            f"run {given!r} is ambiguous in {redact(where)}: {len(found)} runs start so ({shown}); "
            "give more of its characters"
        )
    return found[0] if found else given
