"""What a trial's training tells the sweep, epoch by epoch: progress events for the sweep's screen, the epoch
checkpoint in the trial's MLflow run, the objective as the Optuna trial's intermediate value, and a stop
when another worker took the trial over. The trainer knows none of this: it calls ``SweepCallback``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from optuna.trial import Trial

from gansweep import checkpoint
from gansweep.config import Objective, TrialPlan
from gansweep.diagnostics import METRICS, Diagnosis, unreadable
from gansweep.sending import Sender
from gansweep.sweep._record import store
from gansweep.sweep._runs import TrialRuns
from gansweep.sweep._storage import Heartbeat
from gansweep.trainer import History, Trainer, TrainerCallback, precision_line

Event = tuple[str, dict[str, Any]]
"""(kind, payload) sent from a worker to the sweep: ``start``, ``step``, ``epoch``, ``end``,
``warning``, ``fatal``."""


class TrialTakenOver(Exception):
    """Another worker judged this one dead and took its trial; this worker's result is void."""


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


class SweepCallback(TrainerCallback):
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
            self.sender.send(lambda: self._upload(saved), replaces="checkpoint")
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
