"""`gansweep run`: queue what is missing, start the workers, watch them, close the sweep's run."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from optuna.trial import FrozenTrial

from gansweep.config import TrialPlan, search_plan
from gansweep.data import TRAIN_SIZES
from gansweep.errors import GansweepError
from gansweep.sending import hurry, unreachable
from gansweep.sweep._callback import Event
from gansweep.sweep._layout import auto_workers, cores
from gansweep.sweep._queue import (
    deciding,
    enqueue_missing,
    fail_and_requeue,
    running_trials,
    slots,
    states_by_key,
    worker_id,
)
from gansweep.sweep._record import State, TrialRecord
from gansweep.sweep._runs import STATE
from gansweep.sweep._settings import SweepSettings
from gansweep.sweep._signals import uninterrupted
from gansweep.sweep._storage import SweepLock, bookkeeping_lock, open_storage, open_study, repair_journal
from gansweep.sweep._worker import Worker, worker_process
from gansweep.tracking import Tracker
from gansweep.trainer import resolve_device
from gansweep.view import share_plans


@dataclass
class SweepResult:
    plans: list[TrialPlan]
    """The grid's plans, then the completed search trials."""
    states: dict[str, State]
    """Key -> state, read back from the store after the run."""
    parent_run: str = ""
    trained: int = 0
    interrupted: bool = False
    fatal: str | None = None
    """Why the workers stopped early (a full disk), if they did."""
    failed: dict[str, str] = field(default_factory=dict)
    """Key -> error, for the points whose trial raised."""


def run_sweep(settings: SweepSettings, plans: list[TrialPlan], on_event: Callable[[Event], None]) -> SweepResult:
    """Queues every point without a live trial, then trains queued trials until none is left;
    ``on_event`` sees the workers' progress. Other processes sharing the storage join in."""
    with nullcontext() if settings.shared else SweepLock(settings.store, settings.study_name):
        journal = settings.journal
        if not settings.shared and (dropped := repair_journal(journal)):
            on_event(
                ("warning", {"message": f"{journal}: dropped a torn last line ({dropped} bytes) before appending"})
            )
        storage = open_storage(settings)
        with bookkeeping_lock(settings, storage):
            study = open_study(settings, storage=storage)
            tracker = Tracker(settings.mlflow_uri, settings.study_name, settings.artifact_root)
            if not settings.shared:
                _queue_leftovers(study, tracker, on_event)
            _end_dead_runs(study, tracker, on_event)
            parent_run = tracker.sweep_run(settings.study_name, settings.config_text)
            share_plans(tracker, settings.config, plans)  # the page `gansweep ui` opens
            sampled = settings.config.search.space if settings.config.search else {}
            enqueue_missing(study, plans, settings.config.n_search, settings.retry_failed, sampled)
        result = SweepResult(plans, {}, parent_run=parent_run)
        wanted = slots(plans, settings.config.n_search)
        queued = study.get_trials(deepcopy=False)  # read once: what is done, and what waits for a worker
        done = len(_done(queued, wanted))
        on_event(("sweep", {"total": len(wanted), "done": done}))

        def record(event: Event) -> None:
            kind, payload = event
            if kind == "end":
                result.trained += payload["state"] == State.COMPLETE.value and "adopted" not in payload
            if kind == "fatal":
                result.fatal = payload["message"]
            on_event(event)

        try:
            if settings.auto_workers:
                settings = _laid_out(settings, plans, _waiting(queued, wanted), on_event)
            _dispatch(settings, storage, study, parent_run, record, todo=len(wanted) - done)
        except KeyboardInterrupt:
            result.interrupted = True
            hurry()  # what is left to end is ended in seconds, or named
        except GansweepError as error:  # a full disk, a judge that is not the sweep's: the run is ended below
            result.fatal = str(error)
        if not settings.shared and not journal.is_file():
            raise GansweepError(
                f"store {settings.store}: {journal.name} is gone (deleted or moved while the sweep ran): the sweep's "
                "state went with it; its runs are in the tracking store, if that is still there"
            )
        trials = study.get_trials(deepcopy=False)
        result.states = states_by_key(trials)
        result.plans = plans + _search_plans(trials, len(plans))
        result.failed = {slot: r.error for slot, r in deciding(trials).items() if r.state == State.FAILED and r.error}
        status = _sweep_status(trials, wanted, result.interrupted)
        if status is not None:
            _finish(tracker, parent_run, status, on_event)
        return result


def _finish(tracker: Tracker, parent_run: str, status: str, on_event: Callable[[Event], None]) -> None:
    """Ends the sweep's run; a store that does not answer is said, not waited for (the sweep has ended)."""
    try:
        tracker.finish_sweep(parent_run, status)
    except Exception as error:
        reason = tracker.gone() or unreachable(error)  # SQLAlchemy's words for a deleted mlflow.db misled
        if reason is None:
            raise
        message = (
            f"the sweep's run {parent_run[:8]} could not be ended as {status} ({reason}): the next gansweep run ends it"
        )
        on_event(("warning", {"message": message}))


def _end_dead_runs(study, tracker: Tracker, on_event: Callable[[Event], None]) -> None:
    """Ends the trial runs an earlier `gansweep run` could not end (its tracking store did not answer
    then, and it was stopped): RUNNING runs of trials that failed or were interrupted."""
    ended = {
        r.run_id: r
        for r in map(TrialRecord.of, study.get_trials(deepcopy=False))
        if r.run_id and r.state in (State.FAILED, State.INTERRUPTED)
    }
    dead = sorted(tracker.running_trials() & ended.keys()) if ended else []
    for run_id in dead:
        record = ended[run_id]
        if record.state == State.FAILED:
            tracker.end_trial(run_id, "FAILED", {"gansweep.error": (record.error or "")[:5000]}, only_if_running=True)
        else:
            tracker.end_trial(run_id, "KILLED", {STATE: State.INTERRUPTED.value}, only_if_running=True)
    if dead:
        runs = ", ".join(r[:8] for r in dead)
        on_event(("warning", {"message": f"ended {len(dead)} run(s) an earlier run could not end: {runs}"}))


def _laid_out(
    settings: SweepSettings, plans: list[TrialPlan], waiting: set[str], on_event: Callable[[Event], None]
) -> SweepSettings:
    """``--workers auto``: one worker, or on the CPU as many as ``auto_workers`` picks for the trials
    queued (not those failed and not retried, nor those other machines are training). A search trial
    counts at the search's fixed settings: its sampled width or epochs are not known yet."""
    (device,) = settings.devices
    if resolve_device(device).type != "cpu":
        return settings
    config = settings.config
    left = [p for p in plans if p.key in waiting]
    left += [search_plan(config, {}, i) for i in range(config.n_search) if f"search#{i}" in waiting]
    if not left:
        return settings
    workers = auto_workers(left, TRAIN_SIZES[config.dataset], cores())
    threads = max(1, cores() // workers) if workers > 1 else torch.get_num_threads()  # one: in this process
    on_event(
        ("note", {"message": f"--workers auto: {workers} worker(s) x {threads} thread(s) for {len(left)} trial(s)"})
    )
    return replace(settings, devices=(device,) * workers)


def _waiting(trials: list[FrozenTrial], wanted: list[str]) -> set[str]:
    """The slots of ``wanted`` queued for a worker to claim."""
    decided = deciding(trials)
    return {slot for slot in wanted if slot in decided and decided[slot].state == State.WAITING}


def _done(trials: list[FrozenTrial], wanted: list[str]) -> list[str]:
    """The slots of ``wanted`` whose trial is complete (or pruned)."""
    decided = deciding(trials)
    return [slot for slot in wanted if slot in decided and decided[slot].state.done]


def _queue_leftovers(study, tracker, on_event: Callable[[Event], None]) -> None:
    """Journal store, under its `SweepLock`: no other run is alive, so RUNNING trials and runs are
    left over from one that died. Their points are queued again (to resume from their checkpoint)."""
    leftovers = [t for t in running_trials(study) if fail_and_requeue(study, t)]
    for record in map(TrialRecord.of, leftovers):
        if record.run_id:
            tracker.end_trial(record.run_id, "KILLED", {STATE: State.INTERRUPTED.value}, only_if_running=True)
    if leftovers:
        message = f"{len(leftovers)} trial(s) left running by an earlier run marked interrupted; retrying them"
        on_event(("warning", {"message": message}))


def _sweep_status(trials: list[FrozenTrial], wanted: list[str], interrupted: bool) -> str | None:
    """The parent run's end state, or None while other processes still train."""
    if len(_done(trials, wanted)) == len(wanted):
        return "FINISHED"
    if any(t.state.name == "RUNNING" for t in trials):
        return None
    return "KILLED" if interrupted else "FAILED"


def _search_plans(trials: list[FrozenTrial], first_index: int) -> list[TrialPlan]:
    """The completed (or pruned) ``search:`` trials as plans, in trial order (for the results table)."""
    done = [r.plan for r in map(TrialRecord.of, trials) if r.search and r.state.done and r.plan]
    return [replace(plan, index=first_index + i) for i, plan in enumerate(done)]


def complete_search_trials(study) -> int:
    records = map(TrialRecord.of, study.get_trials(deepcopy=False))
    return sum(r.state == State.COMPLETE and r.search for r in records)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler stopping the job), raised where Ctrl-C's KeyboardInterrupt would be:
    the trials are queued again and marked interrupted alike. Unlike Ctrl-C in a terminal, it reached
    this process alone, so ``_dispatch`` passes it on to the worker processes (as SIGINT)."""


def _dispatch(
    settings: SweepSettings, storage, study, parent_run: str, record: Callable[[Event], None], todo: int
) -> None:
    """One worker in this process, or one process per entry of ``settings.devices``, but no more
    than there are trials to train."""
    devices = settings.devices[: max(1, todo)]
    if len(devices) == 1:
        Worker.open(settings, devices[0], record, parent_run=parent_run).run_queue()
        return
    context = mp.get_context("spawn")
    events = context.Queue()
    threads = max(1, cores() // len(devices))
    procs = [
        context.Process(target=worker_process, args=(settings, i, threads, parent_run, events), daemon=True)
        for i in range(len(devices))
    ]
    for proc in procs:
        proc.start()
    try:
        _supervise(procs, events, settings, storage, study, record)
    except KeyboardInterrupt as stop:
        for proc in procs:
            if isinstance(stop, Terminated) and proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGINT)
        for proc in procs:
            proc.join(timeout=60)  # workers queue their trial again, then leave
        _drain(events, record)
        raise
    finally:
        for proc in procs:
            proc.join(timeout=5)


def _supervise(
    procs: list[Any], events, settings: SweepSettings, storage, study, record: Callable[[Event], None]
) -> None:
    """Relays worker events until every worker has left, looking at least once a second for workers
    that left: a trial one still holds (it was SIGKILLed, ran out of memory, or its store failed) is
    queued again at once, for the others to resume."""
    alive = {proc.pid: proc for proc in procs}
    looked = time.monotonic()
    while alive:
        try:
            with uninterrupted():
                kind, payload = events.get(timeout=1)
            if kind != "exit":
                record((kind, payload))
        except queue.Empty:
            pass
        if time.monotonic() - looked >= 1:
            looked = time.monotonic()
            for pid, proc in list(alive.items()):
                if proc.exitcode is not None:
                    del alive[pid]
                    _take_over(settings, storage, study, pid, proc.exitcode, record)


def _take_over(
    settings: SweepSettings, storage, study, pid: int, exitcode: int, record: Callable[[Event], None]
) -> None:
    owner = worker_id(pid)
    orphans = [t for t in running_trials(study) if TrialRecord.of(t).worker.split(" ")[0] == owner]
    with bookkeeping_lock(settings, storage):
        requeued = [t for t in orphans if fail_and_requeue(study, t)]
    if requeued or exitcode != 0:
        message = f"worker {owner} died (exit code {exitcode}); {len(requeued)} trial(s) queued again for the others"
        record(("warning", {"message": message}))
    for trial in requeued:
        record(("end", {"key": TrialRecord.of(trial).key or "", "state": State.INTERRUPTED.value}))


def _drain(events, record: Callable[[Event], None]) -> None:
    while True:
        try:
            with uninterrupted():
                kind, payload = events.get(timeout=0.1)
        except queue.Empty:
            return
        if kind in ("end", "fatal", "warning"):  # a stopping worker names the runs it could not end
            record((kind, payload))
