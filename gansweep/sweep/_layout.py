"""`--workers auto`: how many worker processes a sweep on the CPU starts, from the cores this process may
use and the size of the models left to train.

On a CPU the choice is between one worker whose trial uses every core's thread and one worker per core
with a thread each. Measured on 2 cores (`benchmarks/bench_workers.py`, `benchmarks/RESULTS.md`):
processes never trained slower than threads, and the smaller the model the more they gain (its layers
are too narrow for threads to share), but each process costs 5-10 s to start (imports, data set,
judge). So auto starts more workers only where the gain over the training ahead pays for the starts.
"""

from __future__ import annotations

import math
import os

import torch
from torch.utils.flop_counter import FlopCounterMode

from gansweep.config import TrialPlan
from gansweep.hparams import Hyperparameters
from gansweep.models import MODELS

GAINS = ((30e6, 0.19), (300e6, 0.13), (math.inf, 0.03))
"""(FLOPs per image of G and D, forward and backward, below which; the least gain of one process per core
over one process with every core's thread) measured on 2 cores, two 1-thread processes against one
2-thread process, same steps: cs231n-mlp and mlp (13-18 MFLOP) 1.19-1.31x (cgan, 19 MFLOP, is the same
kind of network); dcgan28 width 32 and cs231n-dcgan (46-107 MFLOP) 1.13-1.16x; dcgan28 width 128
(719 MFLOP) 1.03x."""
START = 0.43e12
"""A worker process's start-up, as FLOPs of training it could have done: the break-even work a worker,
2.27e12, times the 0.19 gain of the model measured there (cs231n-mlp). bench_workers, 4 cs231n-mlp
trials, 2 workers minus 1 worker's wall time: +8.1 s at 5 epochs (0.59e12 a worker), -3.5 s at 20
(2.36e12), -11.8 s at 40 (4.72e12); the line through the ends crosses zero at 2.27e12."""


def cores() -> int:
    """The cores this process may use (a cgroup's or Slurm's share, where the system says; macOS does not)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def flops_per_image(model: str, hp: Hyperparameters) -> float:
    """One image through G and D, forward and backward: counted on the meta device (no memory, ~10 ms;
    the counter's first use imports torch._dynamo, ~1 s, which the trainer's optimizers import anyway)."""
    spec = MODELS[model]
    meta = torch.device("meta")
    with meta:
        generator, discriminator = spec.build(hp.latent_dim, hp.width)
    latent = spec.sample_latent(2, hp.latent_dim, None, meta)  # 2: BatchNorm refuses a batch of one
    with FlopCounterMode(display=False) as counter:
        discriminator(generator(latent.z, latent.labels), latent.labels).sum().backward()
    return counter.get_total_flops() / 2


def auto_workers(left: list[TrialPlan], n_train: int, available: int) -> int:
    """Workers for the trials ``left`` to train on the CPU, up to one per core and one per trial: as many
    as the gain of the largest model left, over all the training left, pays the start-ups of."""
    most = min(available, len(left))
    if most < 2:
        return 1
    sizes = {(p.model, p.hp.latent_dim, p.hp.width): flops_per_image(p.model, p.hp) for p in left}
    gain = next(g for below, g in GAINS if max(sizes.values()) < below)
    work = sum(sizes[(p.model, p.hp.latent_dim, p.hp.width)] * n_train * p.hp.epochs for p in left)
    return max(1, min(most, int(work * gain / START)))
