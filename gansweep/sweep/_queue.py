"""The sweep's work queue, kept in the Optuna study itself.

Every grid point and every ``search:`` slot is an *entry*. An entry waits as a WAITING trial; a worker
claims it with Optuna's own compare-and-set (WAITING -> RUNNING succeeds for exactly one process, on
PostgreSQL through a row lock), so no point is trained twice however many workers and machines
share the study. An entry whose trial died (its worker killed, its heartbeat stale, Ctrl-C) is queued
again as a WAITING copy that names the dead trial's MLflow run, whose checkpoint the next owner
resumes from. An entry whose trial raised an error stays failed until ``--retry-failed``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import optuna
from optuna.trial import TrialState

from gansweep.config import TrialPlan
from gansweep.hparams import Hyperparameters
from gansweep.sweep import _optuna

KEY_ATTR = "gansweep_key"
SLOT_ATTR = "search_slot"
PLAN_ATTRS = (KEY_ATTR, "model", "hyperparameters", "seed", "dataset", "reported", "index", "search", SLOT_ATTR)
"""User attributes that say which point a trial trains: what a re-queued copy keeps."""
MAX_TAKEOVERS = 3
"""A trial whose worker died this many times in a row is left failed (it may be what kills them)."""
_RANK = {"COMPLETE": 4, "PRUNED": 4, "RUNNING": 3, "WAITING": 2, "FAIL": 1}


def worker_id(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


def entry_of(trial: Any) -> str | None:
    """The grid key, or ``search#N`` for a search slot; None for trials gansweep did not queue."""
    slot = trial.user_attrs.get(SLOT_ATTR)
    return f"search#{slot}" if slot is not None else trial.user_attrs.get(KEY_ATTR)


def plan_attrs(plan: TrialPlan) -> dict[str, Any]:
    attrs = {
        KEY_ATTR: plan.key,
        "model": plan.model,
        "hyperparameters": plan.hp.as_params(),
        "seed": plan.seed,
        "dataset": plan.dataset,
        "reported": plan.reported,
        "index": plan.index,
    }
    return {k: v for k, v in attrs.items() if v is not None}


def plan_of(trial: Any) -> TrialPlan:
    """The grid point a queued trial stands for (the inverse of ``plan_attrs``)."""
    a = trial.user_attrs
    return TrialPlan(
        a["model"],
        Hyperparameters.from_params(a["hyperparameters"]),
        a["seed"],
        a["dataset"],
        a.get("reported"),
        a.get("index", 0),
    )


def deciding_trials(trials: Iterable[Any]) -> dict[str, Any]:
    """Entry -> the trial that decides its state: complete beats running beats waiting beats failed;
    among equals the newest (trials come in creation order)."""
    chosen: dict[str, Any] = {}
    for trial in trials:
        entry = entry_of(trial)
        if entry is not None and (entry not in chosen or _RANK[trial.state.name] >= _RANK[chosen[entry].state.name]):
            chosen[entry] = trial
    return chosen


def entries(plans: list[TrialPlan], n_search: int) -> list[str]:
    """The sweep's entries in file order: the grid's keys, then ``search#0`` ... ``search#N-1``."""
    return [p.key for p in plans] + [f"search#{i}" for i in range(n_search)]


def trials_by_key(trials: Iterable[Any]) -> dict[str, Any]:
    """Point key (for search trials: of the sampled point) -> the trial that decides its state."""
    return {t.user_attrs[KEY_ATTR]: t for t in deciding_trials(trials).values() if KEY_ATTR in t.user_attrs}


def trial_states(trials: Iterable[Any]) -> dict[str, str]:
    """Point key -> the Optuna state that decides it (see ``deciding_trials``)."""
    return {key: t.state.name for key, t in trials_by_key(trials).items()}


def enqueue_missing(study: Any, plans: list[TrialPlan], n_search: int, retry_failed: bool) -> int:
    """Queues every grid point and search slot that has no live trial; returns how many. Run under
    ``bookkeeping_lock``: the check and the queueing must not interleave with another process's."""
    decided = deciding_trials(study.get_trials(deepcopy=False))
    attrs_of = [plan_attrs(p) for p in plans] + [{"search": True, SLOT_ATTR: i} for i in range(n_search)]
    queued = 0
    for entry, attrs in zip(entries(plans, n_search), attrs_of):
        last = decided.get(entry)
        if last is None:
            study.enqueue_trial({}, user_attrs=attrs)
        elif last.state.name == "FAIL" and (retry_failed or "error" not in last.user_attrs):
            requeue(study, last)
        else:
            continue
        queued += 1
    return queued


def requeue(study: Any, trial: Any) -> None:
    """A WAITING copy of a dead or failed trial: the same point (its sampled parameters too), naming
    its MLflow run (for the next owner to end, if a dead worker left it RUNNING) and the newest run
    with an epoch checkpoint (to resume from)."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k in PLAN_ATTRS}
    attrs["takeovers"] = trial.user_attrs.get("takeovers", 0) + ("error" not in trial.user_attrs)
    previous = trial.user_attrs.get("mlflow_run_id") or trial.user_attrs.get("previous_run")
    for key, value in (("previous_run", previous), ("checkpoint_run", trial.user_attrs.get("checkpoint_run"))):
        if value:
            attrs[key] = value
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=attrs,
        )
    )


def requeue_stale(study: Any, trial: Any) -> None:
    """Optuna's callback for a trial whose heartbeat went stale (run by the one process that failed it)."""
    if trial.user_attrs.get("takeovers", 0) < MAX_TAKEOVERS:  # else left failed until the next `gansweep run`
        requeue(study, trial)


def fail_and_requeue(study: Any, trial: Any) -> bool:
    """Marks a RUNNING trial whose worker is known dead as failed and queues it again; False when
    another process got there first."""
    if not _optuna.fail(study, trial):
        return False
    requeue_stale(study, trial)
    return True


def claim_waiting(study: Any, worker: str = "") -> optuna.trial.Trial | None:
    """The oldest WAITING trial, now RUNNING, ours and labelled with ``worker``, or None."""
    _optuna.forget_finished(study)  # the sampler must see the trials finished since the last claim
    for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial = _optuna.claim(study, waiting)
        if trial is not None:
            trial.set_user_attr("worker", worker)
            return trial
    return None


def running_trials(study: Any) -> list[Any]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))


def point_status(trials: list[Any], plans: list[TrialPlan], n_search: int) -> list[dict[str, Any]]:
    """One row per grid point and search slot: its ``label``, ``state`` (complete, running, failed or waiting),
    the ``worker`` (host:pid device) that holds or held it, its ``epoch``, and ``detail`` (the
    verdict, or the error)."""
    decided = deciding_trials(trials)
    rows = []
    for entry, plan in zip(entries(plans, n_search), [*plans, *[None] * n_search]):
        trial = decided.get(entry)
        attrs = trial.user_attrs if trial is not None else {}
        name = trial.state.name if trial is not None else "WAITING"
        state = {"COMPLETE": "complete", "PRUNED": "complete", "RUNNING": "running", "WAITING": "waiting"}.get(name)
        if state is None:  # FAIL: an error stays failed; a dead worker's trial is queued again by the next run
            state = "failed" if "error" in attrs else "waiting"
        if plan is None and "hyperparameters" in attrs:
            plan = plan_of(trial)
        epochs = plan.hp.epochs if plan is not None else None
        rows.append(
            {
                "entry": entry,
                "label": plan.label if plan else entry,
                "state": state,
                "model": plan.model if plan else None,
                "hyperparameters": plan.hp.as_params() if plan else None,
                "seed": plan.seed if plan else None,
                "worker": attrs.get("worker", "") if state != "waiting" else "",
                "epoch": attrs.get("epoch", epochs if state == "complete" else 0),
                "epochs": epochs,
                "detail": attrs.get("error") or attrs.get("verdict", ""),
                "optuna_trial": trial.number if trial else None,
                "run_id": attrs.get("mlflow_run_id", ""),
            }
        )
    return rows
