"""A trial's record: its user attributes by field name, its state in the one vocabulary."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from gansweep.config import TrialPlan
from gansweep.hparams import resolve_hyperparameters
from gansweep.sweep import State, TrialRecord
from gansweep.sweep._record import attrs, plan_attrs

PLAN = TrialPlan("mlp", resolve_hyperparameters("mlp", {"epochs": 2}), 1, "mnist-5k", "Default, bad result", 3)


def _trial(state: TrialState, **user_attrs) -> optuna.trial.FrozenTrial:
    value = 1.0 if state == TrialState.COMPLETE else None
    return optuna.trial.create_trial(state=state, value=value, user_attrs=user_attrs)


def test_a_queued_point_reads_back_as_its_plan() -> None:
    record = TrialRecord.of(_trial(TrialState.WAITING, **plan_attrs(PLAN)))
    assert record.plan == PLAN and record.key == PLAN.key and record.slot == PLAN.key
    assert record.state == State.WAITING


def test_fields_keep_the_attribute_names_earlier_stores_have() -> None:
    assert attrs(key="k", run_id="r", epoch=3) == {"gansweep_key": "k", "mlflow_run_id": "r", "epoch": 3}
    record = TrialRecord.of(_trial(TrialState.RUNNING, gansweep_key="k", mlflow_run_id="r", worker="h:1 cpu"))
    assert (record.key, record.run_id, record.worker) == ("k", "r", "h:1 cpu")
    with pytest.raises(KeyError, match="not a TrialRecord field: mlflow_run_id"):
        attrs(mlflow_run_id="r")


def test_a_search_slot_has_no_plan_until_it_is_sampled() -> None:
    record = TrialRecord.of(_trial(TrialState.WAITING, **attrs(search=True, search_slot=2)))
    assert record.plan is None and record.slot == "search#2" and record.key is None


@pytest.mark.parametrize(
    ("optuna_state", "extra", "state"),
    [
        (TrialState.WAITING, {}, State.WAITING),
        (TrialState.RUNNING, {}, State.RUNNING),
        (TrialState.COMPLETE, {}, State.COMPLETE),
        (TrialState.PRUNED, {}, State.PRUNED),
        (TrialState.FAIL, {"error": "OutOfMemoryError: CUDA out of memory"}, State.FAILED),
        (TrialState.FAIL, {}, State.INTERRUPTED),  # its worker died or was stopped: resumed by the next run
        (TrialState.FAIL, {"interrupted": True}, State.INTERRUPTED),
    ],
)
def test_one_state_per_optuna_state_and_error(optuna_state: TrialState, extra: dict, state: State) -> None:
    assert TrialRecord.of(_trial(optuna_state, **extra)).state == state
    assert state.done == (state in (State.COMPLETE, State.PRUNED))
