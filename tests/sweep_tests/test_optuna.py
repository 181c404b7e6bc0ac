"""One test per Optuna internal that gansweep/sweep/_optuna.py relies on: a release that moves one fails here, by name."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from gansweep.sweep import _optuna


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    return optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=0))


def test_the_study_keeps_its_storage_as_study_storage(study: optuna.Study) -> None:
    assert _optuna.storage_of(study) is study._storage
    assert isinstance(_optuna.storage_of(study), optuna.storages.BaseStorage)


def test_a_trial_and_its_frozen_copy_carry_the_storage_id(study: optuna.Study) -> None:
    trial = study.ask()
    frozen = study.trials[0]
    assert _optuna.trial_id(trial) == _optuna.trial_id(frozen)
    assert _optuna.storage_of(study).get_trial(_optuna.trial_id(trial)).number == trial.number


def test_the_sampler_caches_finished_trials_per_thread_and_forgetting_clears_it(study: optuna.Study) -> None:
    for x in (0.1, 0.2):
        study.add_trial(
            optuna.trial.create_trial(params={"x": x}, distributions={"x": FloatDistribution(0, 1)}, value=x)
        )
    study.ask({"x": FloatDistribution(0, 1)})  # the sampler reads the finished trials through the cache
    assert study._thread_local.cached_all_trials is not None
    _optuna.forget_finished(study)
    assert study._thread_local.cached_all_trials is None


def test_claim_moves_a_waiting_trial_to_running_once(study: optuna.Study) -> None:
    study.enqueue_trial({})
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    trial = _optuna.claim(study, waiting)
    assert trial is not None and study.trials[0].state == TrialState.RUNNING
    assert _optuna.claim(study, waiting) is None  # a second claimant loses the compare-and-set


def test_fail_marks_a_running_trial_failed_once(study: optuna.Study) -> None:
    study.ask()
    running = study.trials[0]
    assert _optuna.fail(study, running) and study.trials[0].state == TrialState.FAIL
    assert not _optuna.fail(study, running)  # already finished: another process got there first


def test_only_rdb_storages_have_heartbeats(study: optuna.Study, tmp_path: Path) -> None:
    assert not _optuna.has_heartbeats(_optuna.storage_of(study))
    url = f"sqlite:///{tmp_path / 'rdb.db'}"
    assert not _optuna.has_heartbeats(optuna.storages.RDBStorage(url))
    assert _optuna.has_heartbeats(optuna.storages.RDBStorage(url, heartbeat_interval=5))
