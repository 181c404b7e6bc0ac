"""Signals held back while a step that a cut would leave broken runs."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

DEFERRED = (signal.SIGINT, signal.SIGTERM)
"""What ``uninterrupted`` holds back: Ctrl-C, and the SIGTERM a scheduler sends (`gansweep run` raises it
as an interrupt)."""
LOOK_EVERY = 0.5
"""Seconds between looks at ``unless`` while a signal is held back."""


@contextlib.contextmanager
def uninterrupted(unless: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Ctrl-C and SIGTERM wait for the block; each that came meanwhile is raised again after it, under
    the handler it would have met. For the steps that a cut leaves broken: a checkpoint's upload and the
    record of it (a local store copies in place: cut mid-copy, a torn checkpoint.pt; cut before the
    record, none recorded; either way the trial started over from epoch 0 in a CI run; the tracking
    thread makes them, and an interrupted trial waits for it under this), and a read from
    the workers' event queue (a cut mid-message left the rest unreadable: EOFError in a suite run).
    Once ``unless()`` holds (the store does not answer) a signal held or coming is raised at once: a
    trial's final upload to a stalled tracking server held Ctrl-C for 6 minutes (MLflow's 120 s read
    timeout, tried three times), and a copy that does not end is no copy to wait for."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sees signals
        yield
        return
    caught: list[int] = []
    done, lock = threading.Event(), threading.Lock()

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    def hold(signum: int, frame: object) -> None:
        if unless():
            caught.clear()
            restore()
            signal.raise_signal(signum)  # its own handler raises it here, out of the call in progress
            return
        caught.append(signum)
        if len(caught) == 1:
            threading.Thread(target=look, args=(signum, threading.main_thread().ident), daemon=True).start()

    def look(signum: int, main: int) -> None:
        """Wakes the main thread's held signal once ``unless()`` holds (the block's call may never return)."""
        while not done.wait(LOOK_EVERY):
            with lock:  # not once the block has ended: the signal is raised there, once
                if not done.is_set() and unless():
                    signal.pthread_kill(main, signum)
                    return

    previous = {sig: signal.signal(sig, hold) for sig in DEFERRED}
    try:
        yield
    finally:
        with lock:
            done.set()
        restore()
        for signum in caught:
            signal.raise_signal(signum)
