"""What several commands share: a sweep named by its grid or its name, a writable-folder check and
SIGTERM handled as Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from gansweep.config import SweepConfig, load_config
from gansweep.errors import GansweepError
from gansweep.options import name_problem, path_problem, shown


def grid_or_name(target: str, overrides: Sequence[str] = ()) -> SweepConfig | None:
    """What `gansweep report` and `gansweep status` (and ``gansweep.report``) take: a grid.yaml, read, or
    a sweep's name (None). A target that looks like a file (a path, or a name ending in .yaml or .yml)
    is read as one, so a mistyped grid says it cannot be read rather than that no sweep has its name."""
    if not target.strip():
        raise GansweepError(f"{target!r} names no sweep: give a grid.yaml or a sweep's name")
    if not (target.lower().endswith((".yaml", ".yml")) or "/" in target or "\\" in target):
        if path_problem(target) is None and Path(target).is_file():
            return load_config(target, overrides)
        if problem := name_problem(target):
            raise GansweepError(f"{problem}; or give its grid.yaml")
        if overrides:
            raise GansweepError(f"--set {overrides[0]}: --set changes a grid file's fields; {target!r} names a sweep")
        return None
    if problem := path_problem(target):
        raise GansweepError(f"{shown(target)}: {problem}")
    return load_config(target, overrides)


def writable_folder(folder: Path, flag: str, fix: str = "give a folder") -> None:
    """Checked before the work, which would otherwise be lost when its result cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise GansweepError(f"{flag} {folder}: cannot write into that folder ({error.strerror}); {fix}") from None


@contextlib.contextmanager
def on_sigterm(stop: type[KeyboardInterrupt]) -> Iterator[None]:
    """SIGTERM raises ``stop`` meanwhile: the command ends as after Ctrl-C, cleaning up, instead of dying."""

    def handler(signum: int, frame: object) -> None:
        raise stop

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
