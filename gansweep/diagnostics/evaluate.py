"""Evaluating a trial while it trains: sample metrics at every evaluation, and early stopping on flags."""

from __future__ import annotations

from gansweep.diagnostics.flags import Diagnosis, Flag, diagnose, hopeless
from gansweep.diagnostics.judge import Judge
from gansweep.diagnostics.metrics import Reference, sample_metrics
from gansweep.trainer import Trainer, TrainerCallback, generate

EVAL_EVERY = 1
"""Evaluate after every epoch: a trend (improving, flat, degrading) needs several evaluations, and a
short trial must have them too. Measured cost: ``benchmarks/bench_trainer.py`` prints the share."""
EVAL_SAMPLES = 256
"""Samples judged per evaluation. 256 cost 3.4 % of a cs231n-mlp trial evaluated after every epoch (its
epoch is ~0.6 s on 2 CPU cores; 1.1 % for dcgan28 width 32), while the metrics' own noise stays small
against the changes a trend must see (measured spreads in ``flags.py``)."""
AUTO = "auto"
"""``early_stop: auto``, the default: stop what cannot recover (``flags.hopeless``)."""
STOPPED = "stopped at epoch"
"""How the verdict of a trial that early stopping ended begins: ``stopped at epoch N of M: ...``."""
EARLY_STOP = "early stop:"
"""How ``history.stopped`` begins when early stopping ended the trial (not a non-finite loss)."""
EVAL_SEED_OFFSET = 2
"""Evaluation latents are seeded with seed + 2 (seed + 1 is the fixed grid): the same latents at every
evaluation, so metrics across epochs compare the generator, not the draw."""


def evaluated(epoch: int, every: int, last: int) -> bool:
    """Whether samples are judged after ``epoch``: every ``every`` epochs and always at the last."""
    return epoch % every == 0 or epoch == last


class SampleEvaluator(TrainerCallback):
    """Adds the sample metrics to the epoch record at each evaluation, and stops the trial by
    ``early_stop``: ``auto`` once it is hopeless (``flags.hopeless``), or a tuple of flag names once one
    of them is flagged and still standing (not recovered). Must run before callbacks that log records."""

    def __init__(
        self,
        judge: Judge,
        reference: Reference,
        every: int = EVAL_EVERY,
        n_samples: int = EVAL_SAMPLES,
        early_stop: str | tuple[str, ...] = (),
    ) -> None:
        self.judge, self.reference, self.every, self.n_samples, self.early_stop = (
            judge,
            reference,
            every,
            n_samples,
            early_stop,
        )

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        judged = evaluated(trainer.epoch, self.every, trainer.hp.epochs)
        if judged:
            samples = generate(trainer, self.n_samples, seed=trainer.seed + EVAL_SEED_OFFSET)
            record.update(sample_metrics(self.judge, samples, self.reference))
        # auto reads the samples, and a trial's last record must carry them (the objective is read there);
        # at the last planned epoch there is nothing left to stop, and "stopped at epoch 15 of 15" would mislead
        if self.early_stop and (judged or self.early_stop != AUTO) and trainer.epoch < trainer.hp.epochs:
            if flag := self._stop_on(diagnose(trainer.history.epochs)):
                trainer.request_stop(f"{EARLY_STOP} {flag.phrase}")

    def _stop_on(self, diagnosis: Diagnosis) -> Flag | None:
        if self.early_stop == AUTO:
            return hopeless(diagnosis)
        return next((f for f in diagnosis.flags if f.name in self.early_stop and f.end is None), None)
