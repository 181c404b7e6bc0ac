"""Evaluating a trial while it trains: sample metrics every few epochs, and early stopping on flags."""

from __future__ import annotations

import torch

from gansweep.diagnostics.flags import diagnose
from gansweep.diagnostics.judge import Judge
from gansweep.diagnostics.metrics import sample_metrics
from gansweep.trainer import Trainer, TrainerCallback

EVAL_SEED_OFFSET = 2
"""Evaluation latents are seeded with seed + 2 (seed + 1 is the fixed grid): the same latents at every
evaluation, so metrics across epochs compare the generator, not the draw."""


class SampleEvaluator(TrainerCallback):
    """Adds the sample metrics to the epoch record every ``every`` epochs and at the last epoch, and
    stops the trial once one of ``early_stop`` is flagged. Must run before callbacks that log records."""

    def __init__(self, judge: Judge, real: torch.Tensor, every: int = 5, n_samples: int = 1000,
                 early_stop: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.judge, self.real, self.every, self.n_samples, self.early_stop = judge, real, every, n_samples, early_stop

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        if trainer.epoch % self.every == 0 or trainer.epoch == trainer.hp.epochs:
            samples = trainer.generate(self.n_samples, seed=trainer.seed + EVAL_SEED_OFFSET)
            record.update(sample_metrics(self.judge, samples, self.real))
        if self.early_stop:
            for flag in diagnose(trainer.history.epochs).flags:
                if flag.name in self.early_stop:
                    trainer.request_stop(f"early stop: {flag.phrase}")
                    return
