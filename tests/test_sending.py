"""Tracking calls off the training path (``Sender``) and through a store that stops answering (``Patience``)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from gansweep import sending
from gansweep.sending import Patience, Sender, Unanswered, Unreachable, unreachable
from gansweep.tracking import Tracker

REFUSED = requests.exceptions.ConnectionError(
    "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded (Caused by NewConnectionError("
    "'<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new connection: "
    "[Errno 111] Connection refused'))"
)


@pytest.fixture
def quick(monkeypatch) -> None:
    monkeypatch.setattr(sending, "RETRY_EVERY", 0.05)


def _failing(times: int, error: Exception = REFUSED):
    """A call that raises ``error`` ``times`` times, then returns how often it was made."""
    made = []

    def call() -> int:
        made.append(1)
        if len(made) <= times:
            raise error
        return len(made)

    return call


def test_a_store_that_does_not_answer_is_said_once_waited_out_and_its_return_said(quick) -> None:
    said: list[str] = []
    patience = Patience("tracking store http://127.0.0.1:1", said.append)
    assert patience.call("sending metrics to run 0123abcd", _failing(3)) == 4
    assert len(said) == 2 and not patience.troubled
    assert said[0].startswith(
        "tracking store http://127.0.0.1:1 is unreachable (Connection refused) sending metrics to run 0123abcd: "
        "training goes on and what it records waits for the store (nothing is lost)"
    )
    assert said[1].startswith("tracking store http://127.0.0.1:1 answers again after ")


def test_once_stopped_a_store_that_does_not_answer_raises_at_once_and_other_errors_are_not_waited_out(quick) -> None:
    said: list[str] = []
    patience = Patience("store mlruns", said.append)
    with pytest.raises(ValueError):  # a bad request: no waiting mends it
        patience.call("ending run 0123abcd", _failing(1, ValueError("bad status")))
    patience.stop.set()
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"^store mlruns is unreachable \(Connection refused\)$"):
        patience.call("ending run 0123abcd", _failing(100))
    assert time.monotonic() - started < 1 and said == []
    assert patience.call("ending run 0123abcd", _failing(0)) == 1  # a store that answers still gets the call


def test_ctrl_c_ends_a_wait_in_the_main_thread(quick, monkeypatch) -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            Patience("store mlruns", lambda line: None).call("uploading the files of run 0123abcd", _failing(10**9))
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_call_slower_than_slow_call_is_said(quick, monkeypatch) -> None:
    monkeypatch.setattr(sending, "SLOW_CALL", 0.2)
    said: list[str] = []
    Patience("tracking store http://h", said.append).call(
        "uploading checkpoint.pt to run 0123abcd", lambda: time.sleep(0.6)
    )
    assert said[0].startswith("tracking store http://h is unreachable (no answer for 0 s) uploading checkpoint.pt")
    assert said[1].startswith("tracking store http://h answers again after ")


def test_unreachable_reads_the_errors_mlflow_raises(tmp_path) -> None:
    """MLflow wraps the connection error in its own; with gansweep's settings it gives up in seconds."""
    started = time.monotonic()
    with pytest.raises(Unanswered) as refused:  # the tracker's own check of the server
        Tracker("http://127.0.0.1:1", "e")
    assert unreachable(refused.value) and time.monotonic() - started < 15
    import mlflow

    started = time.monotonic()
    with pytest.raises(mlflow.exceptions.MlflowException) as wrapped:
        mlflow.MlflowClient("http://127.0.0.1:1").get_run("0" * 32)
    assert unreachable(wrapped.value) == "Connection refused" and time.monotonic() - started < 15
    unavailable = requests.Response()
    unavailable.status_code = 503
    assert unreachable(requests.exceptions.HTTPError("503", response=unavailable)) == "HTTP 503"
    missing = mlflow.exceptions.MlflowException("no such run", error_code="RESOURCE_DOES_NOT_EXIST")
    assert unreachable(missing) is None and unreachable(OSError(28, "No space left on device")) is None


def test_a_checkpoint_still_waiting_is_replaced_by_the_next_and_the_other_calls_are_kept() -> None:
    gate, made = threading.Event(), []
    with Sender() as sender:
        sender.send(lambda: made.append("first") if gate.wait(10) else None)
        sender.send(lambda: made.append("checkpoint 1"), replaces="checkpoint")
        sender.send(lambda: made.append("metrics 2"))
        sender.send(lambda: made.append("checkpoint 2"), replaces="checkpoint")
        gate.set()
        sender.flush()
    assert made == ["first", "metrics 2", "checkpoint 2"]


def test_an_abandoned_sender_leaves_the_call_in_progress_and_makes_no_other() -> None:
    gate, made = threading.Event(), []
    sender = Sender()
    sender.send(lambda: made.append("first") if gate.wait(10) else None)
    sender.send(lambda: made.append("second"))
    time.sleep(0.1)
    assert not sender.close(timeout=0.1)  # still in the first call
    started = time.monotonic()
    sender.abandon()
    assert time.monotonic() - started < 1 and sender.dropped == 1 and sender.cut
    gate.set()
    sender._thread.join(5)
    assert made == ["first"]


def test_an_idle_sender_abandoned_left_nothing_unsent() -> None:
    """A group's member whose calls were all made was said to have "1 tracking call(s) ... not made"."""
    sender = Sender()
    sender.send(lambda: None)
    sender.flush()
    sender.abandon()
    assert (sender.dropped, sender.cut) == (0, False)
