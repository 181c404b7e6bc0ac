"""Signals held back while a step that a cut would leave broken runs."""

from __future__ import annotations

import signal

import pytest

from gansweep.sweep._signals import uninterrupted


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
