"""What several commands share: a writable-folder check and SIGTERM handled as Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gansweep.errors import GansweepError


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
