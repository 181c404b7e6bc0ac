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
import math
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

from gansweep import checkpoint
from gansweep.config import Objective, TrialPlan, plan_trials, suggest_plan
from gansweep.data import TRAIN_SIZES, Digits, load_dataset
from gansweep.diagnostics import METRICS, Diagnosis, Judge, SampleEvaluator, diagnose, unreadable
from gansweep.diagnostics.evaluate import EARLY_STOP, STOPPED
from gansweep.diagnostics.metrics import Reference
from gansweep.errors import GansweepError, redact
from gansweep.group import Group, GroupError
from gansweep.sweep._groups import GroupSizes
from gansweep.sweep._judge import sweep_judge
from gansweep.sweep._optuna import trial_id
from gansweep.sweep._queue import claim_more, claim_waiting, requeue, running_trials, worker_id
from gansweep.sweep._record import State, TrialRecord, plan_fields, store
from gansweep.sweep._runs import STATE, TrialRuns
from gansweep.sweep._settings import SweepSettings
from gansweep.sweep._signals import uninterrupted
from gansweep.sweep._storage import Heartbeat, bookkeeping_lock, open_storage, open_study
from gansweep.tracking import MlflowEpochLogger, Sender, Tracker
from gansweep.trainer import History, Trainer, TrainerCallback, precision_line
from gansweep.view import run_names

Event = tuple[str, dict[str, Any]]
"""(kind, payload) sent from a worker to the sweep: ``start``, ``step``, ``epoch``, ``end``,
``warning``, ``fatal``."""
TAKEN_OVER = "taken over"
SLOW_SETUP = 5.0
"""A worker's set-up (stores, data set, judge, held-out features) that takes 5 s or more is printed with
its parts: a fresh worker on full MNIST is ready in ~4 s on 2 CPU cores (``benchmarks/bench_startup.py``),
so more than that means something to look at (a judge being trained, a slow store)."""


class TrialTakenOver(Exception):
    """Another worker judged this one dead and took its trial; this worker's result is void."""


class DiskFull(GansweepError):
    """No space left where the stores write: every further trial would fail the same way."""


def epoch_value(record: dict[str, float], objective: Objective) -> float | None:
    """An epoch's ``objective.metric`` (default ``fid_mnist``); ``d_gap`` is |D(x) - D(G(z))|: 0 when D can
    no longer tell real from generated, 1 when D has won outright (report 000's collapse). None where the
    epoch measured nothing: the metric was not evaluated, is NaN, or scores samples the judge could not
    read (a constant)."""
    if objective.metric == "d_gap":
        value = abs(record["d_real"] - record["d_fake"])
    else:
        value = record.get(objective.metric, math.nan)
    if math.isnan(value) or (objective.metric in METRICS and unreadable(record)):
        return None
    return value


def objective_value(history: History, diagnosis: Diagnosis, objective: Objective) -> float:
    """The final epoch's ``epoch_value``, told to Optuna. The worst value (inf, or -inf when maximizing)
    where the number would mislead Optuna: a trial judged bad (a diverged one's score is of noise), or a
    final epoch that measured nothing. So Optuna's best is never a flagged trial; its own metrics (and its
    intermediate values, each epoch's ``epoch_value``) keep what was measured."""
    value = epoch_value(history.epochs[-1], objective)
    if diagnosis.outcome == "bad" or value is None:
        return math.inf if objective.direction == "minimize" else -math.inf
    return value


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


def run_trial(worker: Worker, trial: Trial) -> None:
    """One claimed trial, start to end, recorded in both stores."""
    run_trials(worker, [trial])


def run_trials(worker: Worker, trials: list[Trial]) -> None:
    """Claimed trials of one shape, start to end, each recorded in both stores as its own: several trained
    together as one group (``gansweep.group``; their runs tagged ``gansweep.group``), one alone."""
    group = ", ".join(str(trial.number) for trial in trials) if len(trials) > 1 else None
    courses = [course for trial in trials if (course := _start(worker, trial, group)) is not None]
    pending = list(courses)
    try:
        outcomes = _train(worker, courses)
        for course in courses:
            _conclude(worker, course, outcomes[course.run_id])
            pending.remove(course)
    except KeyboardInterrupt as stop:
        for course in pending:
            _interrupted(worker, course, stop)
        raise
    finally:
        for course in courses:
            course.beating.close()
            course.sender.close()
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
    """Publishes and records a trained trial; records one whose training ended in an error."""
    plan, sender = course.plan, course.sender
    try:
        with course.beating:  # its heartbeat stops once it is recorded
            if isinstance(outcome, Exception):
                raise outcome
            _complete(worker, course, outcome)
    except TrialTakenOver as void:
        _settle(worker, plan, sender, void)
        _taken_over(worker, plan, course.run_id)
    except Exception as error:  # a failed trial is recorded; the worker goes on with the next point
        _settle(worker, plan, sender, error)
        _fail(worker, course.trial, plan, course.run_id, error)


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


def _interrupted(worker: Worker, course: _Course, stop: KeyboardInterrupt) -> None:
    """Ctrl-C: the trial is queued again (another worker may go on with it) and its run ends INTERRUPTED."""
    course.beating.close()
    _settle(worker, course.plan, course.sender, stop)
    if _give_up(worker, course.trial, interrupted=True):
        with bookkeeping_lock(worker.settings, worker.storage):
            requeue(worker.study, worker.study.trials[course.trial.number])
    worker.runs.kill(course.run_id, State.INTERRUPTED.value)
    worker.emit(("end", {"key": course.plan.key, "state": State.INTERRUPTED.value}))


def _settle(worker: Worker, plan: TrialPlan, sender: Sender, ending: BaseException) -> None:
    """Before a trial that ends otherwise than complete is recorded: waits, uninterrupted, for the
    tracking calls already sent, so a checkpoint on its way is whole and recorded when the trial is
    queued again (the next run resumes from it) and no upload outlives its run's end. A call that
    failed meanwhile is reported; the trial's own ending is what gets recorded."""
    with uninterrupted():
        sender.close()
    if sender.error is not None and sender.error is not ending:
        message = redact(f"{plan.label}: tracking failed: {type(sender.error).__name__}: {sender.error}")
        worker.emit(("warning", {"message": message}))


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
    if found is None:
        return False
    run_id, history, judge = found
    if (history.stopped or "").startswith(EARLY_STOP) and not worker.settings.config.early_stop:
        return False  # stopped early, where this sweep now trains every epoch
    if judge != worker.judge.name:
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
        _SweepCallback(
            worker.runs, worker.emit, trial, plan, run_id, heartbeat, sender, cfg.checkpoint_every, cfg.objective
        )
    )
    return Trainer(plan.model, worker.digits, plan.hp, plan.seed, worker.device, cfg.amp, callbacks)


class _SweepCallback(TrainerCallback):
    """Progress events, the epoch checkpoint in the trial's run, each epoch's objective as the trial's
    intermediate value (optuna-dashboard's learning curves; a resumed trial's earlier epochs at its start),
    and a stop when the trial was taken over."""

    def __init__(
        self,
        runs: TrialRuns,
        emit: Callable[[Event], None],
        trial: Trial,
        plan: TrialPlan,
        run_id: str,
        heartbeat: Heartbeat,
        sender: Sender,
        every: int,
        objective: Objective | None = None,
    ) -> None:
        self.runs, self.emit, self.trial, self.plan = runs, emit, trial, plan
        self.run_id, self.heartbeat, self.sender, self.every = run_id, heartbeat, sender, every
        self.objective = objective or Objective()

    def on_start(self, trainer: Trainer) -> None:
        steps, done = trainer.hp.epochs * trainer.steps_per_epoch, trainer.epoch * trainer.steps_per_epoch
        start = {"key": self.plan.key, "total": steps, "done": done, "label": self.plan.label}
        self.emit(("start", start | {"epochs": trainer.hp.epochs}))
        store(self.trial, precision=trainer.precision)
        for record in trainer.history.epochs:  # a resumed trial's
            self._report(record)
        if trainer.precision_rates:
            self.emit(("note", {"message": f"{self.plan.label}: {precision_line(trainer)}"}))

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None:
        self.emit(("step", {"key": self.plan.key}))

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        if self.heartbeat.lost.is_set():
            raise TrialTakenOver()
        if trainer.epoch % self.every == 0 and trainer.epoch < trainer.hp.epochs:  # the last comes with the rest
            saved = checkpoint.snapshot(trainer)  # this epoch's state, before the next epoch changes it
            self.sender.send(lambda: self._upload(saved))
        store(self.trial, epoch=trainer.epoch)
        self._report(record)
        self.emit(("epoch", {"key": self.plan.key, "record": record}))

    def _report(self, record: dict[str, float]) -> None:
        value = epoch_value(record, self.objective)
        if value is not None:
            self.trial.report(value, int(record["epoch"]))

    def _upload(self, saved: checkpoint.Snapshot) -> None:
        """On the tracking thread: the trial's record names the run only once its checkpoint is there."""
        self.runs.checkpoint(self.run_id, saved)
        store(self.trial, checkpoint_run=self.run_id)


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
    except OSError as recording:  # a full disk fails the bookkeeping too: the next run queues the trial again
        if recording.errno != errno.ENOSPC:
            raise
        error = recording
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
    # it on as SIGINT, after which the worker queues its trial again and leaves.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
