"""The work queue in the Optuna study: queued once, claimed once, queued again with what a resume needs."""

from __future__ import annotations

import fcntl
import threading
from collections import Counter
from pathlib import Path

import optuna
import pytest

from gansweep.config import load_config, plan_trials
from gansweep.sweep import SweepSettings, TrialRecord, open_study
from gansweep.sweep._queue import claim_waiting, deciding, enqueue_missing, fail_and_requeue, point_status, requeue
from gansweep.sweep._storage import bookkeeping_lock, open_storage

GRID = "name: q\nepochs: 1\nmodels:\n  - model: mlp\n    grid: {lr: [1.0e-3, 5.0e-4, 2.0e-4], batch_size: [64, 128]}\n"


@pytest.fixture
def settings(tmp_path: Path) -> SweepSettings:
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    return SweepSettings(load_config(path), GRID, "q", tmp_path / "mlruns")


def test_enqueue_is_idempotent_and_claims_are_exactly_once(settings: SweepSettings) -> None:
    plans = plan_trials(settings.config)
    study = open_study(settings)
    assert enqueue_missing(study, plans, 2, retry_failed=False) == 6 + 2
    assert enqueue_missing(study, plans, 2, retry_failed=False) == 0

    handles = [open_study(settings, worker=i) for i in range(3)]  # three workers' own storages
    claimed: list[int] = []

    def work(study) -> None:
        while (trial := claim_waiting(study)) is not None:
            claimed.append(trial.number)

    threads = [threading.Thread(target=work, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(8))  # every queued trial once, none twice
    assert [p.key for p in plans] == [TrialRecord.of(t).plan.key for t in study.get_trials()[:6]]


def test_a_worker_that_saw_a_trial_waiting_cannot_claim_it_once_another_has(
    settings: SweepSettings, monkeypatch
) -> None:
    """The race the threads above may or may not hit, made certain: both workers list the trial as
    WAITING, one claims it, and the other's compare-and-set must refuse it."""
    study = open_study(settings)
    enqueue_missing(study, plan_trials(settings.config)[:1], 0, retry_failed=False)
    first, second = open_study(settings, worker=0), open_study(settings, worker=1)
    seen = second.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert claim_waiting(first) is not None
    monkeypatch.setattr(second, "get_trials", lambda **_: seen)
    assert claim_waiting(second) is None


def test_requeue_keeps_the_point_and_names_the_run_to_resume_from(settings: SweepSettings) -> None:
    plans = plan_trials(settings.config)
    study = open_study(settings)
    enqueue_missing(study, plans[:1], 0, retry_failed=False)
    trial = claim_waiting(study)
    trial.set_user_attr("mlflow_run_id", "run-1")
    trial.set_user_attr("epoch", 3)
    assert fail_and_requeue(study, study.trials[0])
    assert not fail_and_requeue(study, study.trials[0])  # another process got there first: no second copy
    copy = study.trials[1]
    assert copy.state.name == "WAITING" and TrialRecord.of(copy).plan == plans[0]
    assert copy.user_attrs["previous_run"] == "run-1" and copy.user_attrs["takeovers"] == 1
    assert "epoch" not in copy.user_attrs
    assert deciding(study.trials)[plans[0].key].number == 1  # waiting beats failed


def test_failed_points_wait_for_retry_failed(settings: SweepSettings) -> None:
    plans = plan_trials(settings.config)[:2]
    study = open_study(settings)
    enqueue_missing(study, plans, 0, retry_failed=False)
    for error in ("OutOfMemoryError: CUDA out of memory", None):
        trial = claim_waiting(study)
        if error:
            trial.set_user_attr("error", error)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    rows = point_status(study.trials, plans, 0)
    assert [(r["state"], r["detail"]) for r in rows] == [
        ("failed", "OutOfMemoryError: CUDA out of memory"),
        ("interrupted", ""),  # its worker died: the next run queues it again, and resumes it
    ]
    assert enqueue_missing(study, plans, 0, retry_failed=False) == 1  # the dead one only
    assert enqueue_missing(study, plans, 0, retry_failed=True) == 1  # now the failed one
    assert Counter(t.state.name for t in study.trials) == {"FAIL": 2, "WAITING": 2}


def test_a_trial_whose_worker_died_4_times_is_left_failed_until_the_next_run(settings: SweepSettings) -> None:
    plans = plan_trials(settings.config)[:1]
    study = open_study(settings)
    enqueue_missing(study, plans, 0, retry_failed=False)
    for _ in range(4):  # claimed, then its worker dies and another process notices
        trial = claim_waiting(study)
        assert trial is not None and fail_and_requeue(study, study.trials[trial.number])
    assert claim_waiting(study) is None
    assert [t.state.name for t in study.trials] == ["FAIL"] * 4
    assert enqueue_missing(study, plans, 0, retry_failed=False) == 1  # what the next `gansweep run` does
    assert claim_waiting(study) is not None


def test_a_sqlite_storage_takes_the_sweep_lock_beside_its_database(settings: SweepSettings, tmp_path: Path) -> None:
    shared = SweepSettings(settings.config, GRID, "q", settings.store, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    storage = open_storage(shared)
    locked = threading.Event()

    def queue_points() -> None:
        with bookkeeping_lock(shared, storage):
            locked.set()

    with open(tmp_path / "optuna.db.gansweep-lock", "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # another process holds the sweep's lock
        starter = threading.Thread(target=queue_points)
        starter.start()
        assert not locked.wait(0.5)
        fcntl.flock(other, fcntl.LOCK_UN)
    starter.join()
    assert locked.is_set()


def test_requeue_of_a_search_trial_keeps_its_sampled_parameters(settings: SweepSettings) -> None:
    study = open_study(settings)
    enqueue_missing(study, [], 1, retry_failed=False)
    trial = claim_waiting(study)
    lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    requeue(study, study.trials[0])
    again = claim_waiting(study)
    assert again.suggest_float("lr", 1e-4, 1e-2, log=True) == lr and again.user_attrs["search_slot"] == 0


def test_concurrent_starters_on_postgres_queue_each_point_once(
    settings: SweepSettings, postgres_url: str, sweep_name: str
) -> None:
    """Four `gansweep run`s starting at the same moment: the advisory lock serialises their queueing."""
    shared = SweepSettings(settings.config, GRID, sweep_name, settings.store, storage=postgres_url)
    plans = plan_trials(shared.config)
    open_study(shared)
    barrier = threading.Barrier(4)

    def start() -> None:
        storage = open_storage(shared)
        study = open_study(shared, storage=storage)
        barrier.wait()
        with bookkeeping_lock(shared, storage):
            enqueue_missing(study, plans, 0, retry_failed=False)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = Counter(t.user_attrs["gansweep_key"] for t in open_study(shared).trials)
    assert keys == Counter(p.key for p in plans)


def test_a_trial_whose_worker_died_right_after_claiming_it_goes_stale(
    settings: SweepSettings, postgres_url: str, sweep_name: str
) -> None:
    """The claim itself leaves a heartbeat: a worker killed before its heartbeat thread starts still
    leaves a trial the others take over, rather than one RUNNING for ever."""
    import time

    shared = SweepSettings(settings.config, GRID, sweep_name, settings.store, storage=postgres_url, heartbeat=1)
    study = open_study(shared)
    enqueue_missing(study, plan_trials(shared.config)[:1], 0, retry_failed=False)
    assert claim_waiting(study, "gone:1 cpu").user_attrs["worker"] == "gone:1 cpu"  # ... and its worker dies
    time.sleep(shared.grace_period + 1.5)
    optuna.storages.fail_stale_trials(study)
    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]


def test_grid_trials_carry_their_settings_as_optuna_params(settings: SweepSettings, tmp_path: Path) -> None:
    plans = plan_trials(settings.config)  # 3 lr x 2 batch sizes
    study = open_study(settings)
    enqueue_missing(study, plans, 0, retry_failed=False)
    while (trial := claim_waiting(study)) is not None:
        params = study.trials[trial.number].params
        study.tell(trial, 1000 * params["lr_g"] + params["batch_size"] / 1000)  # lr matters, batch size a little
    assert study.metric_names == ["fid_mnist"]
    frame = study.trials_dataframe()
    assert {"params_lr_g", "params_batch_size", "params_beta1", "params_seed"} <= set(frame.columns)
    assert "params_loss" not in frame.columns  # bce throughout
    assert sorted(frame["params_lr_g"]) == sorted(p.hp.lr_g for p in plans)
    importances = optuna.importance.get_param_importances(study)
    assert {name for name, value in importances.items() if value > 0} == {"lr_g", "lr_d", "batch_size"}
    assert max(importances, key=importances.get) in ("lr_g", "lr_d")

    wider = tmp_path / "wider.yaml"  # an edited grid: a value beyond the old range still fits the stored trials
    wider.write_text(GRID.replace("2.0e-4]", "2.0e-4, 1.0e-2]"))
    assert enqueue_missing(study, plan_trials(load_config(wider)), 0, retry_failed=False) == 2


def test_a_name_the_search_samples_is_left_to_it(settings: SweepSettings) -> None:
    from gansweep.sweep._queue import grid_distributions

    plans = plan_trials(settings.config)
    assert "batch_size" in grid_distributions(plans) and "batch_size" not in grid_distributions(plans, {"batch_size"})
    assert grid_distributions(plans)["lr_g"].log and not grid_distributions(plans)["beta1"].log


def test_ctrl_c_is_not_counted_as_a_worker_death(settings: SweepSettings) -> None:
    study = open_study(settings)
    enqueue_missing(study, plan_trials(settings.config)[:1], 0, retry_failed=False)
    trial = claim_waiting(study)
    trial.set_user_attr("interrupted", True)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    requeue(study, study.trials[0])
    assert study.trials[1].user_attrs["takeovers"] == 0
