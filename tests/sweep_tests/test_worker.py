"""What a finished trial tells Optuna (``_worker.objective_value``): Optuna's best is never a trial
judged bad, nor one whose samples the judge could not read; each epoch's value is an intermediate one. And a trial's epoch checkpoints: uploaded
while the next epochs train, and recorded only once uploaded."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import optuna
import pytest
import torch

from gansweep.config import Objective, TrialPlan
from gansweep.diagnostics import Diagnosis
from gansweep.diagnostics.flags import Flag
from gansweep.hparams import resolve_hyperparameters
from gansweep.sending import Sender
from gansweep.sweep._callback import SweepCallback, epoch_value, objective_value
from gansweep.sweep._optuna import storage_of, trial_id
from gansweep.sweep._record import TrialRecord
from gansweep.sweep._runs import TrialRuns
from gansweep.sweep._storage import Heartbeat
from gansweep.trainer import History, Trainer, TrainerCallback

DIVERGED = Diagnosis([Flag("diverged", 1, "non-finite loss")], "diverged at epoch 1", {})
GOOD = Diagnosis([], "good", {})


def _history(**last: float) -> History:
    return History(epochs=[{"epoch": 1, "d_real": 0.9, "d_fake": 0.2, "readable": 1.0, **last}])


@pytest.mark.parametrize(
    ("history", "diagnosis", "objective", "value"),
    [
        (_history(fid_mnist=80.0), GOOD, Objective(), 80.0),
        (_history(fid_mnist=20.0), DIVERGED, Objective(), math.inf),  # a lower score, of noise
        (_history(fid_mnist=1376.34, readable=0.0), GOOD, Objective(), math.inf),  # the judge read nothing
        (_history(fid_mnist=math.nan), GOOD, Objective(), math.inf),
        (_history(mnist_score=9.0), DIVERGED, Objective(metric="mnist_score", direction="maximize"), -math.inf),
        (
            _history(mnist_score=1.0, readable=0.0),
            GOOD,
            Objective(metric="mnist_score", direction="maximize"),
            -math.inf,
        ),
        (_history(readable=0.0), GOOD, Objective(metric="d_gap"), pytest.approx(0.7)),  # needs no judge
    ],
)
def test_a_flagged_or_unreadable_trial_gets_the_worst_value(history, diagnosis, objective, value) -> None:
    assert objective_value(history, diagnosis, objective) == value


class _Scores(TrainerCallback):
    """Stands in for the judge: fid_mnist 100 - epoch, samples unreadable at epoch 2."""

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        record.update(fid_mnist=100.0 - trainer.epoch, readable=0.0 if trainer.epoch == 2 else 1.0)


def test_each_epochs_objective_is_the_trials_intermediate_value(digits) -> None:
    """optuna-dashboard's learning curves: every epoch that measured the objective, at step = epoch."""
    study = optuna.create_study()
    trial = study.ask()
    hp = resolve_hyperparameters("cs231n-mlp", {"epochs": 3, "batch_size": 500})
    plan = TrialPlan("cs231n-mlp", hp, 0, "mnist-5k", None, 0)
    runs = TrialRuns(None, "", 10, {}, "mnist-5k/v4/test")  # type: ignore[arg-type]  # no checkpoint is sent
    with Heartbeat(storage_of(study), trial_id(trial), 15) as heartbeat, Sender() as sender:
        callback = SweepCallback(runs, lambda event: None, trial, plan, "run", heartbeat, sender, every=100)
        Trainer("cs231n-mlp", digits, hp, device="cpu", callbacks=[_Scores(), callback]).fit()
    runs.close()
    assert study.trials[0].intermediate_values == {1: 99.0, 3: 97.0}  # epoch 2's samples were unreadable
    assert epoch_value({"epoch": 1, "d_real": 0.9, "d_fake": 0.2}, Objective(metric="d_gap")) == pytest.approx(0.7)


class _GatedTracker:
    """A tracking store whose uploads wait until ``gate`` opens; notes each file as it arrives, with the
    epoch inside a checkpoint, the epoch the trainer had finished, and the trial's recorded checkpoint run."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.gate = threading.Event()
        self.trial = trial
        self.trainer: Trainer | None = None
        self.arrived: list[tuple[str, int | None, int, str]] = []

    def log_artifact(self, run_id: str, file: Path) -> None:
        assert self.gate.wait(timeout=120), "the gate never opened: training waited on the upload"
        assert self.trainer is not None
        inside = torch.load(file, weights_only=True)["epoch"] if file.name == "checkpoint.pt" else None
        self.arrived.append((file.name, inside, self.trainer.epoch, TrialRecord.of(self.trial).checkpoint_run))


def test_an_epoch_checkpoint_is_uploaded_while_training_goes_on_and_recorded_after_and_the_newest_replaces_one_waiting(
    digits, open_at
) -> None:
    study = optuna.create_study()
    trial = study.ask()
    hp = resolve_hyperparameters("cs231n-mlp", {"epochs": 4, "batch_size": 500})
    plan = TrialPlan("cs231n-mlp", hp, 0, "mnist-5k", None, 0)
    tracker = _GatedTracker(trial)
    runs = TrialRuns(tracker, "", 10, {}, "mnist-5k/v4/test")  # type: ignore[arg-type]
    with Heartbeat(storage_of(study), trial_id(trial), 15) as heartbeat, Sender() as sender:  # in memory: no beats
        callback = SweepCallback(runs, lambda event: None, trial, plan, "run", heartbeat, sender, every=1)
        trainer = Trainer("cs231n-mlp", digits, hp, device="cpu", callbacks=[callback, open_at(tracker.gate, 3)])
        tracker.trainer = trainer
        trainer.fit()
        sender.flush()
    runs.close()
    checkpoints = [(inside, trained, recorded) for name, inside, trained, recorded in tracker.arrived if inside]
    # epoch 2's, still waiting when epoch 3's came, was replaced by it; the last epoch's comes with the finished trial
    assert [inside for inside, _, _ in checkpoints] == [1, 3]
    assert checkpoints[0][1] == 3  # epoch 1's checkpoint arrived once epoch 3 had trained
    assert checkpoints[0][2] == ""  # ... and the trial named no checkpoint run before it had
    assert [name for name, *_ in tracker.arrived[:3]] == ["history.json", "samples.npy", "checkpoint.pt"]
    assert TrialRecord.of(trial).checkpoint_run == "run" and TrialRecord.of(trial).epoch == 4
