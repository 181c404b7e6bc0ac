"""A worker: claims queued trials one after another, or several of one shape at once, and runs them
through ``run_trials``.

``run_trials`` is the whole life of each trial it is given, top to bottom: which point it trains
(``_start``), its MLflow run, resuming from the checkpoint of the trial it replaces, training with a
heartbeat (``_train``: several as one fused group, ``gansweep.group``, one alone), the diagnosis,
publishing, and telling Optuna (``_conclude``); and, when it goes wrong, whether the trial is queued again
(Ctrl-C), left to the worker that took it over, or recorded as failed — each trial of a group on its own.
How many of a shape train together is ``_groups.GroupSizes``'s. The MLflow runs are ``TrialRuns``'s; the
Optuna user attributes are ``TrialRecord``'s.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, fail_stale_trials
from optuna.trial import Trial, TrialState

from gansweep.config import TrialPlan, plan_trials, suggest_plan
from gansweep.data import TRAIN_SIZES, Digits, load_dataset
from gansweep.diagnostics import Diagnosis, Judge, SampleEvaluator, diagnose
from gansweep.diagnostics.evaluate import EARLY_STOP, STOPPED
from gansweep.diagnostics.metrics import Reference
from gansweep.errors import GansweepError, redact
from gansweep.group import Group, GroupError
from gansweep.sending import Patience, Sender, Unreachable, hurry
from gansweep.sweep._callback import Event, SweepCallback, TrialTakenOver, objective_value
from gansweep.sweep._groups import GroupSizes
from gansweep.sweep._judge import sweep_judge
from gansweep.sweep._optuna import trial_id
from gansweep.sweep._queue import claim_more, claim_waiting, requeue, running_trials, worker_id
from gansweep.sweep._record import State, TrialRecord, plan_fields, store
from gansweep.sweep._runs import STATE, Lost, TrialRuns
from gansweep.sweep._settings import SweepSettings
from gansweep.sweep._storage import Heartbeat, bookkeeping_lock, open_storage, open_study
from gansweep.tracking import MlflowEpochLogger, Tracker
from gansweep.trainer import History, Trainer
from gansweep.view import run_names

TAKEN_OVER = "taken over"
SLOW_SETUP = 5.0
"""A worker's set-up (stores, data set, judge, held-out features) that takes 5 s or more is printed with
its parts: a fresh worker on full MNIST is ready in ~4 s on 2 CPU cores (``benchmarks/bench_startup.py``),
so more than that means something to look at (a judge being trained, a slow store)."""


class DiskFull(GansweepError):
    """No space left where the stores write: every further trial would fail the same way."""


class _Timer:
    """Wall time of a set-up, part by part."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, float]] = []
        self.last = time.perf_counter()

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.parts.append((part, now - self.last))
        self.last = now

    @property
    def total(self) -> float:
        return sum(seconds for _, seconds in self.parts)

    def __str__(self) -> str:
        return f"{self.total:.1f} s (" + ", ".join(f"{part} {seconds:.1f} s" for part, seconds in self.parts) + ")"


@dataclass(frozen=True)
class Worker:
    """Trains queued trials one after another on one device; the stores, the data set and the judge
    are opened once, by ``open``."""

    settings: SweepSettings
    device: str
    emit: Callable[[Event], None]
    storage: BaseStorage
    study: optuna.Study
    runs: TrialRuns
    digits: Digits
    judge: Judge
    reference: Reference
    groups: GroupSizes

    @classmethod
    def open(
        cls, settings: SweepSettings, device: str, emit: Callable[[Event], None], number: int = 0, parent_run: str = ""
    ) -> Worker:
        cfg = settings.config
        timer = _Timer()
        storage = open_storage(settings)
        study = open_study(settings, worker=number, storage=storage)
        tracker = Tracker(settings.mlflow_uri, settings.study_name, settings.artifact_root)
        store = (
            f"tracking store {redact(settings.tracking_uri)}" if settings.tracking_uri else f"store {settings.store}"
        )
        tracker.patience = Patience(store, lambda line: emit(("warning", {"message": line})))
        timer.lap("stores")
        digits = load_dataset(cfg.dataset, cfg.data_dir)
        timer.lap("data")

        def say(line: str) -> None:
            emit(("note", {"message": f"worker {number}: {line}"}))

        judge = sweep_judge(settings, study, storage, tracker, parent_run, digits, device, say)
        timer.lap(f"judge {judge.name}, {judge.source}")
        reference = Reference.of(judge, digits.heldout_images)
        timer.lap("held-out features")
        if timer.total >= SLOW_SETUP:
            emit(("note", {"message": f"worker {number} on {device} set up in {timer}"}))
        names = run_names(plan_trials(cfg, TRAIN_SIZES[cfg.dataset]))
        searched = tuple(cfg.search.space) if cfg.search else ()
        runs = TrialRuns(tracker, parent_run, cfg.snapshot_every, names, judge.name, searched)
        groups = GroupSizes(settings.group_size, device, digits, say)
        return cls(settings, device, emit, storage, study, runs, digits, judge, reference, groups)

    def run_queue(self) -> None:
        """Trains queued trials until none is waiting and none is running anywhere: while another
        worker still trains, this one stays, to take the trial over if that worker dies."""
        poll = min(5.0, self.settings.heartbeat)
        try:
            while True:
                # Under the sweep's lock: failing a stale trial and queueing its copy are two writes that
                # a starting `gansweep run` must not see halfway; SQLite has no row lock for the claim.
                self.groups.measure_next(self.study)  # outside the lock: it trains for a while
                with bookkeeping_lock(self.settings, self.storage):
                    fail_stale_trials(self.study)  # RDB storage: queues again the trials of silent workers
                    label = f"{worker_id(os.getpid())} {self.device}"
                    trial = claim_waiting(self.study, label)
                    size = self.groups.size(TrialRecord.of(trial)) if trial is not None else 1
                    more = claim_more(self.study, trial, size, label) if trial is not None else []
                if trial is not None:
                    run_trials(self, [trial, *more])
                elif not running_trials(self.study):
                    return
                else:
                    time.sleep(poll)
        finally:
            self.runs.close()


@dataclass
class _Course:
    """One claimed trial in this worker: its point, its MLflow run, its tracking thread (``Sender``), and once
    prepared its heartbeat and trainer."""

    trial: Trial
    record: TrialRecord
    plan: TrialPlan
    run_id: str
    sender: Sender = field(default_factory=Sender)  # per-epoch tracking calls, made while the next epoch trains
    beating: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    """Holds its heartbeat, from its preparation until it is concluded."""
    heartbeat: Heartbeat | None = None
    trainer: Trainer | None = None
    resumed_from: int = 0
    ended: bool = False
    """Recorded: complete, failed, taken over or interrupted."""


def run_trials(worker: Worker, trials: list[Trial]) -> None:
    """Claimed trials of one shape, start to end, each recorded in both stores as its own: several trained
    together as one group (``gansweep.group``; their runs tagged ``gansweep.group``), one alone. After
    Ctrl-C every one of them not yet recorded is queued again, its run ended."""
    group = ", ".join(str(trial.number) for trial in trials) if len(trials) > 1 else None
    unstarted, courses = list(trials), []
    try:
        for trial in trials:
            course = _start(worker, trial, group)  # waits for a tracking store that does not answer
            unstarted.remove(trial)
            courses += [course] if course is not None else []
        outcomes = _train(worker, courses)
        for course in courses:
            _conclude(worker, course, outcomes[course.run_id])
    except KeyboardInterrupt as stop:
        for trial in unstarted:
            _release(worker, trial)
        for course in courses:
            if not course.ended:
                _settle(worker, course, stop)
                _interrupted(worker, course)
        raise
    finally:
        for course in courses:
            course.beating.close()
            course.sender.abandon()  # settled, or finished: nothing left to wait for
            worker.runs.forget(course.run_id)


def _start(worker: Worker, trial: Trial, group: str | None) -> _Course | None:
    """The trial's point and a new MLflow run for it; None when it needs no training (an invalid search
    point, recorded as failed, or a point whose finished run was adopted)."""
    record = TrialRecord.of(trial)
    plan = _plan(worker, trial, record)
    if plan is None or (record.search_slot is None and _adopted(worker, trial, record, plan)):
        return None
    run_id = worker.runs.start(plan, record, group)
    store(trial, run_id=run_id)
    return _Course(trial, record, plan, run_id)


def _train(worker: Worker, courses: list[_Course]) -> dict[str, History | Exception]:
    """Each course's history, or the error that ended it (by run id): its heartbeat started, its trainer
    made and resumed, then all trained together (``Group``), or one alone."""
    outcomes: dict[str, History | Exception] = {}
    ready = []
    for course in courses:
        try:
            heartbeat = Heartbeat(worker.storage, trial_id(course.trial), worker.settings.heartbeat)
            course.heartbeat = course.beating.enter_context(heartbeat)
            course.trainer = _trainer(worker, course.trial, course.plan, course.run_id, course.heartbeat, course.sender)
            course.resumed_from = _resume(worker, course.trainer, course.record, course.plan, course.run_id)
            ready.append(course)
        except Exception as error:  # this trial fails; the others train
            outcomes[course.run_id] = error
    trainers = [course.trainer for course in ready if course.trainer is not None]
    for course, outcome in zip(ready, _fit(trainers)):
        outcomes[course.run_id] = outcome
    return outcomes


def _fit(trainers: list[Trainer]) -> list[History | Exception]:
    """Each trainer's history or error: several as one group, one (or a set that cannot be grouped: a
    resumed trial in another precision) one by one."""
    if len(trainers) > 1:
        try:
            group = Group(trainers)
        except GroupError:
            pass
        else:
            try:
                histories = group.fit()
            except Exception as error:  # the fused step itself failed: every member with it
                return [error] * len(trainers)
            return [group.errors.get(trainer, history) for trainer, history in zip(trainers, histories)]
    outcomes: list[History | Exception] = []
    for trainer in trainers:
        try:
            outcomes.append(trainer.fit())
        except Exception as error:
            outcomes.append(error)
    return outcomes


def _conclude(worker: Worker, course: _Course, outcome: History | Exception) -> None:
    """Publishes and records a trained trial; records one whose training ended in an error. Ctrl-C while
    its tracking calls are waited for interrupts it, and then the worker."""
    plan = course.plan
    try:
        with course.beating:  # its heartbeat stops once it is recorded
            if isinstance(outcome, Exception):
                raise outcome
            _complete(worker, course, outcome)
        course.ended = True
    except TrialTakenOver as void:
        if _settle(worker, course, void):
            _interrupted(worker, course)
            raise KeyboardInterrupt from None
        _taken_over(worker, plan, course.run_id)
        course.ended = True
    except Exception as error:  # a failed trial is recorded; the worker goes on with the next point
        if _settle(worker, course, error):
            _interrupted(worker, course)
            raise KeyboardInterrupt from None
        _fail(worker, course.trial, plan, course.run_id, error)
        course.ended = True


def _complete(worker: Worker, course: _Course, history: History) -> None:
    plan, run_id, trainer, heartbeat = course.plan, course.run_id, course.trainer, course.heartbeat
    assert trainer is not None and heartbeat is not None  # it trained
    diagnosis = _diagnosis(history, plan)  # while the last epoch's metrics are on their way
    course.sender.flush()  # every epoch's metrics and checkpoint are in the store before the run is published
    worker.runs.publish(run_id, plan, trainer, diagnosis)
    if heartbeat.lost.is_set() or worker.storage.get_trial(trial_id(course.trial)).state != TrialState.RUNNING:
        raise TrialTakenOver()
    worker.runs.finish(run_id, history, diagnosis, course.resumed_from)
    _tell(worker, course.trial, course.record, history, diagnosis, course.resumed_from)
    final = {"final": history.epochs[-1], "verdict": diagnosis.verdict}
    worker.emit(("end", {"key": plan.key, "state": State.COMPLETE.value, **final}))


def _interrupted(worker: Worker, course: _Course) -> None:
    """After Ctrl-C: the trial queued again, its run ended KILLED, or named when the store does not answer."""
    course.ended = True
    course.beating.close()
    _release(worker, course.trial)
    plan, run_id = course.plan, course.run_id
    try:
        worker.runs.kill(run_id, State.INTERRUPTED.value)
    except Unreachable as error:  # Ctrl-C stopped the waiting: the next run ends it (run._end_dead_runs)
        message = (
            f"{plan.label}: run {run_id[:8]} could not be ended as KILLED ({error}): the next gansweep run ends it"
        )
        worker.emit(("warning", {"message": message}))
    worker.emit(("end", {"key": plan.key, "state": State.INTERRUPTED.value}))


def _release(worker: Worker, trial: Trial) -> None:
    """A trial this worker holds, after Ctrl-C: marked interrupted and queued again (another worker may
    go on with it, from its checkpoint)."""
    try:
        if _give_up(worker, trial, interrupted=True):
            with bookkeeping_lock(worker.settings, worker.storage):
                requeue(worker.study, worker.study.trials[trial.number])
    except OSError as error:  # the store's files moved or deleted meanwhile: the stop goes on, said
        message = f"trial {trial.number} could not be recorded as interrupted ({error.strerror}: {error.filename})"
        worker.emit(("warning", {"message": message}))


def _settle(worker: Worker, course: _Course, ending: BaseException) -> bool:
    """Before a trial that ends otherwise than complete is recorded: waits for the tracking calls already
    sent, so a checkpoint on its way is whole and recorded when the trial is queued again (the next run
    resumes from it) and no upload outlives its run's end. After Ctrl-C a store that does not answer is not
    waited for, not even for the call in progress; what was not sent is said. True when Ctrl-C came
    meanwhile (the trial is then interrupted)."""
    plan, run_id, sender = course.plan, course.run_id, course.sender
    patience = worker.runs.tracker.patience
    stopping = isinstance(ending, KeyboardInterrupt)
    if stopping:
        _stop_waiting(patience)
    again = abandoned = False
    while True:
        try:
            if (stopping or again) and patience is not None and patience.troubled:
                sender.abandon()  # its call in progress waits on a store that does not answer: not Ctrl-C
                abandoned = True
                break
            if sender.close(timeout=0.5):  # a local copy in progress is waited for: cut, it leaves a torn file
                break
        except KeyboardInterrupt:
            again = True
            _stop_waiting(patience)
    error = sender.error
    unsent = sender.dropped + (sender.cut or isinstance(error, Unreachable))  # an idle sender left nothing unsent
    if (isinstance(error, Unreachable) or abandoned) and unsent:
        reason = error or f"{patience.store if patience else 'the store'} does not answer"
        message = (
            f"{plan.label}: {unsent} tracking call(s) of run {run_id[:8]} were not made ({reason}): it "
            "lacks the metrics and checkpoints sent since; the next run resumes the trial from the last checkpoint "
            "the store holds"
        )
        worker.emit(("warning", {"message": message}))
    elif error is not None and error is not ending:
        message = redact(f"{plan.label}: tracking failed: {type(error).__name__}: {error}")
        worker.emit(("warning", {"message": message}))
    return again and not stopping


def _stop_waiting(patience: Patience | None) -> None:
    """After Ctrl-C: a store that does not answer is no longer waited out, nor a stalled one for long."""
    if patience is not None:
        patience.stop.set()
    hurry()


def _plan(worker: Worker, trial: Trial, record: TrialRecord) -> TrialPlan | None:
    """The grid point, or a freshly sampled search point (None, recorded as failed, if it is invalid)."""
    config = worker.settings.config
    if record.search_slot is None:
        plan = record.plan
        assert plan is not None  # a grid trial is queued with its point
        if plan.dataset == config.dataset:
            return plan
        error = f"this point trains on {plan.dataset}; this worker's grid file loads {config.dataset}"
    else:
        try:
            plan = suggest_plan(config, trial, record.search_slot)
            store(trial, **plan_fields(plan))
            return plan
        except GansweepError as invalid:
            error = str(invalid)
        except ValueError as clash:  # Optuna: this name already has another kind of distribution in the study
            error = f"search: {clash} (grid trials of this study record that hyperparameter; give the search its own --name)"
    store(trial, error=error)
    worker.study.tell(trial, state=TrialState.FAIL)
    worker.emit(("end", {"key": f"trial {trial.number}", "state": State.FAILED.value, "error": error}))
    return None


def _diagnosis(history: History, plan: TrialPlan) -> Diagnosis:
    """The trial's diagnosis; a verdict that says when early stopping ended it."""
    diagnosis = diagnose(history.epochs)
    if (history.stopped or "").startswith(EARLY_STOP):
        diagnosis.verdict = f"{STOPPED} {len(history.epochs)} of {plan.hp.epochs}: {diagnosis.verdict}"
    return diagnosis


def _adopted(worker: Worker, trial: Trial, record: TrialRecord, plan: TrialPlan) -> bool:
    """Completes the trial with the point's FINISHED run when the tracking store already holds one,
    instead of training it twice: the study lost its trial (a deleted journal, another ``--storage``),
    or a worker died between ending the run and telling Optuna."""
    found = worker.runs.finished(plan.key)
    if isinstance(found, Lost):  # a result without its pictures, samples or checkpoint: only training gives them
        run = found.run_id[:8]
        message = f"{plan.label}: run {run} trained it before, but {found.problem}: training it again (run {run} is left as it is)"
        worker.emit(("warning", {"message": message}))
        return False
    if found is None:
        return False
    run_id, history = found.run_id, found.history
    if (history.stopped or "").startswith(EARLY_STOP) and not worker.settings.config.early_stop:
        return False  # stopped early, where this sweep now trains every epoch
    if found.judge != worker.judge.name:
        return False  # scored by another judge (or by one not recorded): its metrics would not compare
    diagnosis = _diagnosis(history, plan)
    store(trial, run_id=run_id)
    _tell(worker, trial, record, history, diagnosis, resumed_from=0)
    verdict = f"{diagnosis.verdict} (run {run_id[:8]}, trained before; not trained again)"
    final = {"final": history.epochs[-1], "verdict": verdict, "adopted": run_id}
    worker.emit(("end", {"key": plan.key, "state": State.COMPLETE.value, **final}))
    return True


def _early_stop(setting: str | list[str]) -> str | tuple[str, ...]:
    return setting if isinstance(setting, str) else tuple(setting)


def _trainer(
    worker: Worker, trial: Trial, plan: TrialPlan, run_id: str, heartbeat: Heartbeat, sender: Sender
) -> Trainer:
    cfg = worker.settings.config
    evaluator = SampleEvaluator(
        worker.judge, worker.reference, cfg.eval_every, cfg.eval_samples, _early_stop(cfg.early_stop)
    )
    callbacks = [evaluator, MlflowEpochLogger(worker.runs.tracker, run_id, sender)]
    callbacks.append(
        SweepCallback(
            worker.runs, worker.emit, trial, plan, run_id, heartbeat, sender, cfg.checkpoint_every, cfg.objective
        )
    )
    return Trainer(plan.model, worker.digits, plan.hp, plan.seed, worker.device, cfg.amp, callbacks)


def _resume(worker: Worker, trainer: Trainer, record: TrialRecord, plan: TrialPlan, run_id: str) -> int:
    """Continues from the newest epoch checkpoint of the trials this one replaces, if there is one;
    returns its epoch (0: from the start). The run of the trial it replaces ends KILLED."""
    if record.previous_run:
        worker.runs.replace(record.previous_run, run_id)
    if not record.checkpoint_run:
        return 0
    try:
        return worker.runs.resume(trainer, record.checkpoint_run, run_id)
    except GansweepError as error:  # no checkpoint yet, or a damaged one: start over
        worker.emit(("warning", {"message": f"{plan.label} starts over: {error}"}))
        return 0


def _tell(
    worker: Worker, trial: Trial, record: TrialRecord, history: History, diagnosis: Diagnosis, resumed_from: int
) -> None:
    """The outcome into the trial's record, then its value (or PRUNED) to Optuna."""
    flags = diagnosis.flags
    store(
        trial,
        final=history.epochs[-1],
        verdict=diagnosis.verdict,
        flags={f.name: f.epoch for f in flags},
        recovered={f.name: f.end for f in flags if f.end is not None},
        outcome=diagnosis.outcome,
        resumed_from_epoch=resumed_from,
        judge=worker.judge.name,
    )
    if (history.stopped or "").startswith(EARLY_STOP) and record.search:
        worker.study.tell(trial, state=TrialState.PRUNED)
    else:
        worker.study.tell(trial, objective_value(history, diagnosis, worker.settings.config.objective))


def _give_up(worker: Worker, trial: Trial, **fields: Any) -> bool:
    """Records ``fields`` and FAIL on a trial this worker holds; False when another worker has
    meanwhile taken it over (its state is no longer ours to write)."""
    try:
        store(trial, **fields)
        worker.study.tell(trial, state=TrialState.FAIL)
    except (UpdateFinishedTrialError, ValueError):  # ValueError: Optuna's "Cannot tell a FAIL trial"
        return False
    return True


def _taken_over(worker: Worker, plan: TrialPlan, run_id: str) -> None:
    # only if still running: the worker that took over may have adopted this run, FINISHED, as its result
    worker.runs.end(run_id, "KILLED", {STATE: "taken over by another worker"}, only_if_running=True)
    worker.emit(("end", {"key": plan.key, "state": TAKEN_OVER, "error": "another worker judged this one dead"}))


def _fail(worker: Worker, trial: Trial, plan: TrialPlan, run_id: str, error: Exception) -> None:
    message = redact(f"{type(error).__name__}: {error}", worker.settings.storage, worker.settings.tracking_uri)
    try:
        if not _give_up(worker, trial, error=message[:2000]):
            _taken_over(worker, plan, run_id)
            return
        worker.runs.fail(run_id, message)
    except OSError as recording:  # the bookkeeping fails too: the next run queues the trial again
        error = recording
        if recording.errno != errno.ENOSPC:
            worker.emit(("end", {"key": plan.key, "state": State.FAILED.value, "error": message}))
            raise GansweepError(
                f"cannot record {plan.label} ({recording.strerror}: {recording.filename}): the store's files were "
                "moved, deleted or made unwritable while the sweep ran; no further trial is trained"
            ) from None
    worker.emit(("end", {"key": plan.key, "state": State.FAILED.value, "error": message}))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        raise DiskFull(
            f"disk full while recording {plan.label} ({error.strerror}: {error.filename}); "
            "free some space, then run the same command with --retry-failed"
        ) from None


def _exit_with_parent() -> None:
    """A worker process ends as soon as its `gansweep run` does (even by SIGKILL): an orphan would
    train on while the next run queues its trial again."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def worker_process(settings: SweepSettings, number: int, threads: int, parent_run: str, events: Any) -> None:
    """The body of a worker process: trains queued trials until the sweep has none left."""
    _exit_with_parent()
    # SIGTERM to the whole group (Slurm's scancel, systemd) would kill a worker mid-write: the run passes
    # it on as SIGINT, after which the worker queues its trial again and leaves. A run started in the
    # background (`&`, nohup) ignores SIGINT, and its workers inherit that: they would not hear it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    torch.set_num_threads(threads)
    try:
        Worker.open(settings, settings.devices[number], events.put, number, parent_run).run_queue()
    except GansweepError as error:  # a full disk, a judge that is not the sweep's: said in its own words
        events.put(("fatal", {"message": str(error)}))
    except KeyboardInterrupt:
        pass
    except Exception as error:  # the store failed under this worker: its trial is queued again by the run
        message = f"worker {worker_id(os.getpid())}: {type(error).__name__}: {error}"
        events.put(("fatal", {"message": redact(message, settings.storage, settings.tracking_uri)}))
    finally:
        events.put(("exit", {"pid": os.getpid()}))
