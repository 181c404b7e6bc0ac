"""Tracking calls off the training path, and through a tracking store that stops answering.

``Sender`` makes a trial's per-epoch calls (its metrics, its epoch checkpoint) in order on one background
thread while the next epoch trains. ``Patience`` is how a sweep's tracking calls meet a store that does
not answer (a tracking server killed or restarting, its network cut, the default store's artifacts
folder gone): the first call that finds it so says it at once, with what happens meanwhile, and every
call is tried again every ``RETRY_EVERY`` seconds until the store answers. Training goes on and its calls
wait (an epoch checkpoint still waiting is replaced by the next one: a resume reads only the newest); a
trial's run starts and ends only once the store answers, so nothing is lost. Ctrl-C stops the waiting
(``Patience.stop``): what was not sent is said, and the runs that could not be ended are named and ended
by the next `gansweep run`.

MLflow's own HTTP client retries a refused connection 7 times, 128 s a call, silently, while Ctrl-C
waits; ``QUICK_HTTP`` has it give up within seconds (measured: 2.4 s), so that the waiting is done
here, where it is said and Ctrl-C ends it. Its 120 s read timeout stays: a tracking server that
stores a large upload in S3 before it answers needs it, and ``SLOW_CALL`` says sooner what waits.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

from gansweep.errors import GansweepError

T = TypeVar("T")

QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
"""MLflow's HTTP retries, as gansweep sets them unless the environment does (MLflow's: 7 and 2)."""
HURRIED = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
"""MLflow's HTTP settings once the sweep is stopping (``hurry``): one try, 5 s for an answer."""
RETRY_EVERY = 5.0
"""Seconds between tries while the tracking store does not answer."""
SLOW_CALL = 30.0
"""A call that has not returned after this long is said to be waiting (a stalled server or disk): the
slowest healthy call measured here, a 112 MB checkpoint into the local store, took 0.39 s."""
UNAVAILABLE = frozenset({429, 502, 503, 504})
"""HTTP statuses of a store that is there but cannot answer now (rate limited, a proxy without its server)."""
MEANWHILE = (
    "training goes on and what it records waits for the store (nothing is lost); a trial's run starts and ends "
    "only once the store answers; trying again every 5 s. Ctrl-C stops: the runs left open are named, and the "
    "next gansweep run ends them and resumes their trials from the last checkpoint the store holds"
)


def hurry() -> None:
    """After Ctrl-C: each later MLflow call of this process tries once and waits at most 5 s for an answer
    (MLflow reads them at every request), so that ending what can be ended takes seconds even against a
    stalled server; a call already under way keeps its own."""
    os.environ.update(HURRIED)


class Unanswered(GansweepError):
    """A tracking store that does not answer, said by gansweep's own checks (its server's health check,
    the default store's artifacts folder gone)."""


class Unreachable(GansweepError):
    """A tracking call that found the store unreachable after this process stopped waiting for it (Ctrl-C)."""


def unreachable(error: BaseException) -> str | None:
    """Why ``error``, raised by a tracking call, means the store did not answer ("Connection refused",
    "timed out", "HTTP 503", ...); None for any other error (a bad request, a full disk), which no
    waiting mends. MLflow wraps the connection error it met in its own, which keeps it as its context."""
    import requests

    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, (Unanswered, Unreachable)):
            return str(cause)
        if isinstance(cause, (requests.exceptions.Timeout, TimeoutError, socket.timeout)):
            return "timed out"
        if isinstance(cause, (requests.exceptions.ConnectionError, ConnectionError)):  # urllib3 wraps its read timeout
            found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(cause))
            timed_out = "timed out" in str(cause).lower()
            return found.group(1).strip() if found else "timed out" if timed_out else type(cause).__name__
        status = getattr(getattr(cause, "response", None), "status_code", None)  # an artifact upload's HTTPError
        if status in UNAVAILABLE:
            return f"HTTP {status}"
        if hasattr(cause, "get_http_status_code") and cause.get_http_status_code() in UNAVAILABLE:  # MlflowException
            return str(cause).strip().splitlines()[0][:200]  # a server's status, or SQLite's "database is locked"
        cause = cause.__cause__ or cause.__context__
    return None


class Patience:
    """A sweep worker's tracking calls: each one that finds the store unreachable is tried again every
    ``RETRY_EVERY`` s while ``stop`` is clear, the first such failure (or a call slower than
    ``SLOW_CALL``) said at once and the store's return said too; with ``stop`` set (Ctrl-C), a call that
    finds the store unreachable raises ``Unreachable``. One per worker, shared by its threads."""

    def __init__(self, store: str, say: Callable[[str], None]) -> None:
        self.store = store
        """How the messages name the store: its redacted URI, or ``store mlruns``."""
        self.say = say
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._since: float | None = None
        """When the current outage was first said (None: the store answers)."""

    @property
    def troubled(self) -> bool:
        """Whether the store is known not to answer now."""
        return self._since is not None

    def call(self, what: str, call: Callable[[], T], guard: Callable[[], AbstractContextManager] | None = None) -> T:
        """``call()``, made under ``guard()`` each time it is tried; ``what`` it does names it in the messages."""
        while True:
            slow = threading.Timer(SLOW_CALL, self._down, args=(f"no answer for {SLOW_CALL:.0f} s", what))
            slow.daemon = True
            slow.start()
            try:
                with guard() if guard else contextlib.nullcontext():
                    result = call()
            except Exception as error:
                reason = unreachable(error)
                if reason is None:
                    raise
                if self.stop.is_set():
                    raise Unreachable(f"{self.store} is unreachable ({reason})") from None
                self._down(reason, what)
                if self.stop.wait(RETRY_EVERY):  # Ctrl-C in the main thread lands here too
                    raise Unreachable(f"{self.store} is unreachable ({reason})") from None
                continue
            finally:
                slow.cancel()
            self._up()
            return result

    def _down(self, reason: str, what: str) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        self.say(f"{self.store} is unreachable ({reason}) {what}: {MEANWHILE}")

    def _up(self) -> None:
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            self.say(f"{self.store} answers again after {time.monotonic() - since:.0f} s: sending what waited")


class Sender:
    """Makes tracking calls in order on one background thread, so that the training loop does not wait
    on the store: ``send`` never blocks, and a call sent with ``replaces=KIND`` drops a call of that kind
    still waiting (checkpoints: only the newest is worth sending; the others, metrics, are kept, as
    small as the history the trainer keeps anyway). A call that raises is raised again, in the caller's
    thread, by the next ``send`` or ``flush``; the calls queued after it are not made (they would land
    out of order) and counted in ``dropped``. Signals reach the main thread only: a call in progress is
    never cut by Ctrl-C.

    Example:
        >>> sent = []
        >>> with Sender() as sender:
        ...     for epoch in (1, 2, 3):
        ...         sender.send(lambda epoch=epoch: sent.append(epoch))
        ...     sender.flush()
        >>> sent
        [1, 2, 3]
    """

    def __init__(self) -> None:
        self._calls: deque[tuple[Callable[[], None], str | None]] = deque()
        self._changed = threading.Condition()
        self._busy = False
        self._closing = False
        self.error: BaseException | None = None
        """The first call that raised (then no later call is made)."""
        self.dropped = 0
        """Calls not made because an earlier one raised, or ``abandon`` left them queued."""
        self.cut = False
        """Whether ``abandon`` left a call in progress (it may not have been made)."""
        # A daemon: a process that dies without closing it must not hang on it at exit.
        self._thread = threading.Thread(target=self._work, name="gansweep-tracking", daemon=True)
        self._thread.start()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, call: Callable[[], None], replaces: str | None = None) -> None:
        """Queues ``call``; raises the error of an earlier call, if one failed."""
        self._raise()
        with self._changed:
            if replaces is not None:
                self._calls = deque(queued for queued in self._calls if queued[1] != replaces)
            self._calls.append((call, replaces))
            self._changed.notify_all()

    def flush(self) -> None:
        """Waits until every call sent so far is made; raises the error of one that failed."""
        with self._changed:
            while self._calls or self._busy:
                self._changed.wait()
        self._raise()

    def close(self, timeout: float | None = None) -> bool:
        """Ends the thread once the calls sent so far are made; waits for it at most ``timeout`` seconds
        (None: until it ends). Whether it ended. Raises nothing: a failed call stays in ``error``."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def abandon(self) -> None:
        """Ends the thread without waiting for it: it makes no call after the one in progress."""
        with self._changed:
            self._closing = True
            self.cut = self._busy
            self.dropped += len(self._calls)
            self._calls.clear()
            self._changed.notify_all()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._calls and not self._closing:
                    self._changed.wait()
                if not self._calls:
                    return
                call, _ = self._calls.popleft()
                self._busy = True
            try:
                if self.error is None:
                    call()
                else:
                    with self._changed:
                        self.dropped += 1
            except BaseException as error:  # handed to the caller's thread, which decides
                self.error = error
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
