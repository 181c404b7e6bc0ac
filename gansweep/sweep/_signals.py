"""Signals held back while a step that a cut would leave broken runs."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

DEFERRED = (signal.SIGINT, signal.SIGTERM)
"""What ``uninterrupted`` holds back: Ctrl-C, and the SIGTERM a scheduler sends (`gansweep run` raises it
as an interrupt)."""


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait for the block; each that came meanwhile is raised again after it, under
    the handler it would have met. For the steps that a cut leaves broken: a checkpoint's upload and the
    record of it (a local store copies in place: cut mid-copy, a torn checkpoint.pt; cut before the
    record, none recorded; either way the trial started over from epoch 0 in a CI run; the tracking
    thread makes them, and an interrupted trial waits for it under this), and a read from
    the workers' event queue (a cut mid-message left the rest unreadable: EOFError in a suite run)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sees signals
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for signum in caught:
            signal.raise_signal(signum)
