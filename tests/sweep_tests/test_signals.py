"""Signals held back while a step that a cut would leave broken runs."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from gansweep.sweep._signals import LOOK_EVERY, uninterrupted


@pytest.fixture
def ctrl_c():
    """Ctrl-C raising KeyboardInterrupt, as in a terminal (a suite run in the background ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_waits_for_an_upload_to_finish_then_interrupts(ctrl_c) -> None:
    """A torn checkpoint.pt in the store made an interrupted trial start over from epoch 0."""
    uploaded = []
    with pytest.raises(KeyboardInterrupt):
        with uninterrupted():
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while the first file is copied
            uploaded += ["history.json", "samples.npy", "checkpoint.pt"]
    assert uploaded == ["history.json", "samples.npy", "checkpoint.pt"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _ctrl_c_after(seconds: float) -> None:
    threading.Timer(seconds, signal.pthread_kill, args=(threading.main_thread().ident, signal.SIGINT)).start()


@pytest.mark.parametrize("before", [False, True], ids=["ctrl-c after the store stopped", "ctrl-c before it stopped"])
def test_ctrl_c_is_not_held_by_a_copy_into_a_store_that_does_not_answer(ctrl_c, before: bool) -> None:
    """A trial's final upload to a stalled tracking server held Ctrl-C for 6 minutes (MLflow's 120 s read
    timeout, three tries): once the store is known not to answer, Ctrl-C cuts the call in progress, whether
    it came before or after that was known."""
    stalled = threading.Event()
    if not before:
        stalled.set()
    threading.Timer(0.6, stalled.set).start()
    _ctrl_c_after(0.1 if before else 0.3)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with uninterrupted(unless=stalled.is_set):
            time.sleep(30)  # a call that does not return: a read from a server that does not answer
    assert time.monotonic() - started < 3
    time.sleep(LOOK_EVERY * 2)  # and it is raised once, not again after the block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
