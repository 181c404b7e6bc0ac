"""A trial as the sweep stores it: which point it trains, who holds it, how it ended.

Optuna keeps the sweep's state; gansweep's share of it is a set of user attributes on each Optuna
trial. ``TrialRecord`` is that set read back (``TrialRecord.of(trial)``), and ``store`` writes it field by
field: the attribute names live here and nowhere else. A point of the sweep may take several Optuna
trials (a dead worker's trial is queued again as a copy); the one that decides its state is chosen by
``deciding`` in ``_queue``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from optuna.trial import FrozenTrial, Trial

from gansweep.config import TrialPlan
from gansweep.hparams import Hyperparameters


class State(str, Enum):
    """Where a trial stands: one vocabulary for the queue, `gansweep status`, the report and the API."""

    WAITING = "waiting"
    """Queued (or not yet queued): the next free worker takes it."""
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    """A search trial that ``early_stop`` ended; Optuna prunes it."""
    FAILED = "failed"
    """It raised an error; it stays failed until ``--retry-failed``."""
    INTERRUPTED = "interrupted"
    """Its worker stopped or died; the next `gansweep run` resumes it from its checkpoint."""

    @property
    def done(self) -> bool:
        return self in (State.COMPLETE, State.PRUNED)


_STORED_AS = {"key": "gansweep_key", "run_id": "mlflow_run_id"}
"""Fields whose user attribute has another name (as stores written by earlier versions have it)."""


@dataclass(frozen=True)
class TrialRecord:
    """gansweep's user attributes of one Optuna trial, with the trial's number and state."""

    number: int
    state: State
    # Which point it trains: a copy queued again keeps these (PLAN_FIELDS).
    key: str | None = None
    """The point's key (``TrialPlan.key``); for a search trial, known once its point is sampled."""
    model: str | None = None
    hyperparameters: dict[str, Any] | None = None
    """``Hyperparameters.as_params()``."""
    seed: int | None = None
    dataset: str | None = None
    reported: str | None = None
    index: int = 0
    search: bool = False
    search_slot: int | None = None
    """For ``search:`` trials: which of the ``n_trials`` it is."""
    # Who holds it.
    worker: str = ""
    """``host:pid device`` of the worker that holds or held it."""
    takeovers: int = 0
    """How many times in a row its worker died (``MAX_TAKEOVERS`` then leaves it failed)."""
    run_id: str = ""
    """Its MLflow run."""
    previous_run: str = ""
    """The run of the trial it replaces (a dead worker may have left it RUNNING)."""
    checkpoint_run: str = ""
    """The newest run with an epoch checkpoint of this point: the trial resumes from it."""
    epoch: int | None = None
    """Epochs trained so far."""
    precision: str | None = None
    """fp32 or bf16: what the trial trains in (with ``amp``, what its measurement chose)."""
    # How it ended.
    error: str | None = None
    """``Type: message`` of the error it raised (then it stays failed until ``--retry-failed``)."""
    interrupted: bool = False
    final: dict[str, float] = field(default_factory=dict)
    """The last epoch's record."""
    verdict: str = ""
    outcome: str | None = None
    """good, bad or unclear (``Diagnosis.outcome``)."""
    flags: dict[str, int | None] = field(default_factory=dict)
    """Flag name -> onset epoch."""
    recovered: dict[str, int] = field(default_factory=dict)
    """Flag name -> the epoch its episode ended."""
    resumed_from_epoch: int = 0
    judge: str = ""
    """``Judge.name`` of the judge that scored it ("" in stores from before judges were recorded)."""

    @classmethod
    def of(cls, trial: FrozenTrial | Trial) -> TrialRecord:
        attrs = trial.user_attrs
        values = {name: attrs[attr] for name, attr in _ATTRS.items() if attr in attrs}
        optuna_state = trial.state.name if isinstance(trial, FrozenTrial) else "RUNNING"  # a live Trial is held
        return cls(number=trial.number, state=_state(optuna_state, "error" in attrs), **values)

    @property
    def slot(self) -> str | None:
        """Its place in the sweep: the point's key, or ``search#N``; None for trials gansweep did not queue."""
        return f"search#{self.search_slot}" if self.search_slot is not None else self.key

    @property
    def plan(self) -> TrialPlan | None:
        """The point it trains; None for a search trial not yet sampled."""
        if self.hyperparameters is None or self.model is None or self.dataset is None:
            return None
        hp = Hyperparameters.from_params(self.hyperparameters)
        return TrialPlan(self.model, hp, self.seed or 0, self.dataset, self.reported, self.index)


_ATTRS = {f.name: _STORED_AS.get(f.name, f.name) for f in fields(TrialRecord) if f.name not in ("number", "state")}
PLAN_FIELDS = ("key", "model", "hyperparameters", "seed", "dataset", "reported", "index", "search", "search_slot")


def _state(optuna_state: str, has_error: bool) -> State:
    if optuna_state == "FAIL":
        return State.FAILED if has_error else State.INTERRUPTED
    return State[optuna_state]


def attrs(**values: Any) -> dict[str, Any]:
    """User attributes from field values (None values left out)."""
    unknown = set(values) - set(_ATTRS)
    if unknown:
        raise KeyError(f"not a TrialRecord field: {', '.join(sorted(unknown))}")
    return {_ATTRS[name]: value for name, value in values.items() if value is not None}


def plan_fields(plan: TrialPlan) -> dict[str, Any]:
    """The fields that say which point a trial trains (the inverse of ``TrialRecord.plan``)."""
    return dict(
        key=plan.key,
        model=plan.model,
        hyperparameters=plan.hp.as_params(),
        seed=plan.seed,
        dataset=plan.dataset,
        reported=plan.reported,
        index=plan.index,
    )


def plan_attrs(plan: TrialPlan) -> dict[str, Any]:
    """The user attributes a grid point is queued with."""
    return attrs(**plan_fields(plan))


def store(trial: Trial, **values: Any) -> None:
    """Writes fields of the trial's record to the storage."""
    for attr, value in attrs(**values).items():
        trial.set_user_attr(attr, value)
