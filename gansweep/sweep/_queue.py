"""The sweep's work queue, kept in the Optuna study itself.

Every grid point and every ``search:`` slot has a *slot* in the sweep (its key, or ``search#N``). A slot
waits as a WAITING trial; a worker claims it with Optuna's own compare-and-set (WAITING -> RUNNING
succeeds for exactly one process, on PostgreSQL through a row lock), so no point is trained twice
however many workers and machines share the study. A slot whose trial died (its worker killed, its
heartbeat stale, Ctrl-C) is queued again as a WAITING copy that names the dead trial's MLflow run,
whose checkpoint the next owner resumes from. A slot whose trial raised an error stays failed until
``--retry-failed``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, Trial, TrialState, create_trial

from gansweep.config import TrialPlan
from gansweep.group import shape
from gansweep.losses import LOSSES
from gansweep.models import MODELS
from gansweep.sweep import _optuna
from gansweep.sweep._record import PLAN_FIELDS, State, TrialRecord, attrs, plan_attrs, store

MAX_TAKEOVERS = 3
"""A trial whose worker died this many times in a row is left failed (it may be what kills them)."""
_RANK = {State.COMPLETE: 4, State.PRUNED: 4, State.RUNNING: 3, State.WAITING: 2, State.FAILED: 1, State.INTERRUPTED: 1}


def worker_id(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


def gone(worker: str) -> bool:
    """Whether the worker ``host:pid device`` ran on this machine and its process has ended: its trial,
    RUNNING in the study, is dead (a `kill -9` of `gansweep run` leaves it so in the journal until the next
    run queues it again; on a shared storage, until its heartbeat goes stale). Workers elsewhere: False."""
    host, _, pid = worker.split(" ")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, under another user
        return False
    return False


def deciding(trials: Iterable[FrozenTrial]) -> dict[str, TrialRecord]:
    """Slot -> the record of the trial that decides its state: complete beats running beats waiting
    beats failed; among equals the newest (trials come in creation order)."""
    chosen: dict[str, TrialRecord] = {}
    for trial in trials:
        record = TrialRecord.of(trial)
        slot = record.slot
        if slot is not None and (slot not in chosen or _RANK[record.state] >= _RANK[chosen[slot].state]):
            chosen[slot] = record
    return chosen


def slots(plans: list[TrialPlan], n_search: int) -> list[str]:
    """The sweep's slots in file order: the grid's keys, then ``search#0`` ... ``search#N-1``."""
    return [p.key for p in plans] + [f"search#{i}" for i in range(n_search)]


def records_by_key(trials: Iterable[FrozenTrial]) -> dict[str, TrialRecord]:
    """Point key (for search trials: of the sampled point) -> the record that decides its state."""
    return {r.key: r for r in deciding(trials).values() if r.key is not None}


def states_by_key(trials: Iterable[FrozenTrial]) -> dict[str, State]:
    """Point key -> its state (see ``deciding``)."""
    return {key: r.state for key, r in records_by_key(trials).items()}


LOG_SCALED = frozenset({"lr_g", "lr_d", "batch_size", "latent_dim", "width"})
"""Hyperparameters whose grid values are spread on a log scale (Optuna's distributions say so)."""
CHOICES = {"model": tuple(MODELS), "loss": tuple(LOSSES)}


def _values(plan: TrialPlan) -> dict[str, Any]:
    return {"model": plan.model, **plan.hp.as_params(), "seed": plan.seed}


def grid_distributions(plans: list[TrialPlan], sampled: Iterable[str] = ()) -> dict[str, BaseDistribution]:
    """One Optuna distribution per hyperparameter of the grid (and model and seed), so that a grid trial
    carries its settings as Optuna params: numbers as a range over the grid's values (a single value
    where one is fixed), names that vary as a category of every allowed one. Ranges rather than categories of the values, because Optuna refuses
    a parameter whose categories change, and a grid edited later must still fit the trials stored. A
    name that ``search:`` samples is left to the search's own distribution."""
    values: dict[str, list[Any]] = {}
    for plan in plans:
        for name, value in _values(plan).items():
            values.setdefault(name, []).append(value)
    distributions: dict[str, BaseDistribution] = {}
    for name, seen in values.items():
        if name in set(sampled) or (name in CHOICES and len(set(seen)) == 1):
            continue  # one model or loss throughout: a category of several would fake an importance
        if name in CHOICES:
            distributions[name] = CategoricalDistribution(CHOICES[name])
        elif all(isinstance(v, int) for v in seen):
            distributions[name] = IntDistribution(min(seen), max(seen), log=name in LOG_SCALED)
        else:
            distributions[name] = FloatDistribution(min(seen), max(seen), log=name in LOG_SCALED)
    return distributions


def enqueue_missing(
    study: optuna.Study, plans: list[TrialPlan], n_search: int, retry_failed: bool, sampled: Iterable[str] = ()
) -> int:
    """Queues every grid point (with its settings as Optuna params, ``grid_distributions``) and search
    slot that has no live trial; returns how many. Run under ``bookkeeping_lock``: the check and the
    queueing must not interleave with another process's."""
    trials = study.get_trials(deepcopy=False)
    decided = deciding(trials)
    distributions = grid_distributions(plans, sampled)
    attrs_of = [plan_attrs(p) for p in plans] + [attrs(search=True, search_slot=i) for i in range(n_search)]
    params_of = [{k: v for k, v in _values(p).items() if k in distributions} for p in plans]
    queued = 0
    for slot, queued_attrs, params in zip(slots(plans, n_search), attrs_of, params_of + [{}] * n_search):
        last = decided.get(slot)
        if last is None:
            dists = {name: distributions[name] for name in params}
            trial = create_trial(state=TrialState.WAITING, params=params, distributions=dists, user_attrs=queued_attrs)
            study.add_trial(trial)
        elif last.state == State.INTERRUPTED or (last.state == State.FAILED and retry_failed):
            requeue(study, trials[last.number])
        else:
            continue
        queued += 1
    return queued


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """A WAITING copy of a dead or failed trial: the same point (its sampled parameters too), naming
    its MLflow run (for the next owner to end, if a dead worker left it RUNNING) and the newest run
    with an epoch checkpoint (to resume from)."""
    record = TrialRecord.of(trial)
    copy = attrs(
        **{name: getattr(record, name) for name in PLAN_FIELDS},
        takeovers=record.takeovers + (record.error is None and not record.interrupted),  # Ctrl-C is no death
        previous_run=record.run_id or record.previous_run or None,
        checkpoint_run=record.checkpoint_run or None,
    )
    study.add_trial(
        create_trial(state=TrialState.WAITING, params=trial.params, distributions=trial.distributions, user_attrs=copy)
    )


def requeue_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Optuna's callback for a trial whose heartbeat went stale (run by the one process that failed it)."""
    if TrialRecord.of(trial).takeovers < MAX_TAKEOVERS:  # else left failed until the next `gansweep run`
        requeue(study, trial)


def fail_and_requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Marks a RUNNING trial whose worker is known dead as failed and queues it again; False when
    another process got there first."""
    if not _optuna.fail(study, trial):
        return False
    requeue_stale(study, trial)
    return True


def claim_waiting(study: optuna.Study, worker: str = "") -> Trial | None:
    """The oldest WAITING trial, now RUNNING, ours and labelled with ``worker``, or None."""
    _optuna.forget_finished(study)  # the sampler must see the trials finished since the last claim
    for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial = _optuna.claim(study, waiting)
        if trial is not None:
            store(trial, worker=worker)
            return trial
    return None


def shape_of(record: TrialRecord) -> tuple[Any, ...] | None:
    """What a queued grid point must share with others to be trained in one group with them (its data set
    and ``group.shape``); None for a search slot, whose point is sampled only once it is claimed."""
    plan = record.plan
    if record.search_slot is not None or plan is None:
        return None
    return (plan.dataset, *shape(plan.model, plan.hp))


def claim_more(study: optuna.Study, first: Trial, size: int, worker: str = "") -> list[Trial]:
    """Up to ``size - 1`` more WAITING grid points of ``first``'s shape (``shape_of``), now RUNNING, ours and
    labelled with ``worker``: trained with ``first`` as one group. Each is claimed as ``claim_waiting``
    claims one, so each is still trained exactly once."""
    key = shape_of(TrialRecord.of(first))
    more: list[Trial] = []
    if key is None:
        return more
    for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if len(more) >= size - 1:
            break
        if shape_of(TrialRecord.of(waiting)) == key and (trial := _optuna.claim(study, waiting)) is not None:
            store(trial, worker=worker)
            more.append(trial)
    return more


def running_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def stored_plans(trials: list[FrozenTrial]) -> tuple[list[TrialPlan], int]:
    """(the grid points, in the grid's order, and the number of search slots) that a study's trials were
    queued for: a sweep read by its name, without its grid."""
    records = deciding(trials).values()
    grid = sorted((r for r in records if r.search_slot is None and r.plan is not None), key=lambda r: r.index)
    slots = [r.search_slot for r in records if r.search_slot is not None]
    return [r.plan for r in grid if r.plan is not None], max(slots, default=-1) + 1


def point_status(trials: list[FrozenTrial], plans: list[TrialPlan], n_search: int) -> list[dict[str, Any]]:
    """One row per grid point and search slot: its ``label``, ``state`` (a ``State``), the ``worker``
    (host:pid device) that holds or held it, its ``epoch``, and ``detail`` (the verdict, or the error).
    A running trial whose worker is ``gone`` is shown interrupted, as the next run will treat it."""
    decided = deciding(trials)
    rows = []
    for slot, grid_plan in zip(slots(plans, n_search), [*plans, *[None] * n_search]):
        record = decided.get(slot) or TrialRecord(number=-1, state=State.WAITING)
        state, detail = record.state, record.error or record.verdict
        if state == State.RUNNING and gone(record.worker):
            state, detail = (
                State.INTERRUPTED,
                f"its worker {record.worker.split(' ')[0]} is gone: the next run resumes it",
            )
        plan = grid_plan or record.plan
        epochs = plan.hp.epochs if plan is not None else None
        rows.append(
            {
                "entry": slot,
                "label": plan.label if plan else slot,
                "state": state.value,
                "model": plan.model if plan else None,
                "hyperparameters": plan.hp.as_params() if plan else None,
                "seed": plan.seed if plan else None,
                "worker": record.worker if record.state != State.WAITING else "",
                "epoch": record.epoch if record.epoch is not None else epochs if record.state.done else 0,
                "epochs": epochs,
                "detail": detail,
                "optuna_trial": record.number if record.number >= 0 else None,
                "run_id": record.run_id,
            }
        )
    return rows
