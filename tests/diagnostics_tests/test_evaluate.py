"""``SampleEvaluator``: the metrics at each evaluation, and early stopping."""

from __future__ import annotations

from gansweep.diagnostics import SampleEvaluator
from gansweep.diagnostics.metrics import Reference
from gansweep.hparams import resolve_hyperparameters
from gansweep.trainer import Trainer


def _fit(digits, judge, epochs: int, early_stop) -> Trainer:
    hp = resolve_hyperparameters("cs231n-mlp", {"batch_size": 500, "epochs": epochs})
    evaluator = SampleEvaluator(judge, Reference.of(judge, digits.heldout_images), early_stop=early_stop)
    trainer = Trainer("cs231n-mlp", digits, hp, seed=0, device="cpu", callbacks=[evaluator])
    trainer.fit()
    return trainer


def test_a_stop_asked_for_at_the_last_planned_epoch_is_no_stop(digits, judge) -> None:
    """A flag standing at the last epoch stops nothing: the trial trained every epoch it planned, and its
    verdict must not read "stopped at epoch 2 of 2"."""
    assert _fit(digits, judge, 1, ("too_early",)).history.stopped is None  # too early at epoch 1 of 1
    stopped = _fit(digits, judge, 2, ("too_early",)).history
    assert stopped.stopped == "early stop: too early to tell at epoch 1" and len(stopped.epochs) == 1
