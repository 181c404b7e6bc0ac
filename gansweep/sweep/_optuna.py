"""Every Optuna internal gansweep relies on, in one place (``optuna>=5,<6`` in pyproject.toml).

The work queue needs what ``Study.ask`` does for a WAITING trial without its fallback of creating a
fresh trial when none waits, and that path is private: the study's storage (``Study._storage``), a
trial's storage id (``_trial_id``) and the sampler's per-thread cache of finished trials
(``Study._thread_local.cached_all_trials``). ``tests/sweep_tests/test_optuna.py`` checks each one, so a
new Optuna release that moves them fails there, by name, rather than somewhere in a sweep.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, Trial, TrialState


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage the study reads and writes (``Study._storage``)."""
    return study._storage


def trial_id(trial: Trial | FrozenTrial) -> int:
    """The storage's id of a trial (``_trial_id``; ``number`` counts within the study)."""
    return trial._trial_id


def forget_finished(study: optuna.Study) -> None:
    """Drops the sampler's cache of the study's trials (``Study._thread_local.cached_all_trials``), so the
    next sample sees the trials finished since the last one; ``Study.ask`` does the same."""
    study._thread_local.cached_all_trials = None


def has_heartbeats(storage: Any) -> bool:
    """True for an RDB storage opened with a heartbeat interval (the journal store has none)."""
    return hasattr(storage, "record_heartbeat") and storage.get_heartbeat_interval() is not None


def claim(study: optuna.Study, waiting: FrozenTrial) -> Trial | None:
    """``waiting`` moved WAITING -> RUNNING by this process, as a live ``Trial``; None when another
    process claimed it first (the storage's compare-and-set lets exactly one win)."""
    storage: Any = storage_of(study)  # record_heartbeat: on RDB storages only (has_heartbeats)
    if has_heartbeats(storage):  # before the claim: a trial without a heartbeat is never judged stale
        storage.record_heartbeat(trial_id(waiting))
    try:
        if not storage.set_trial_state_values(trial_id(waiting), TrialState.RUNNING):
            return None
    except UpdateFinishedTrialError:
        return None
    return Trial(study, trial_id(waiting))


def fail(study: optuna.Study, running: FrozenTrial) -> bool:
    """Marks a RUNNING trial FAIL without telling a sampler (its worker is gone); False when another
    process finished or failed it first."""
    try:
        return storage_of(study).set_trial_state_values(trial_id(running), TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False
