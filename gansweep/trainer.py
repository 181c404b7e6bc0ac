"""One trial: train a zoo model on a data set and hand back its whole history.

The trainer knows nothing of sweeps or tracking; it reports through callbacks. Losses stay on the
device during an epoch and are read back once at its end, so a step never waits for the host.

Example:
    >>> from gansweep.data import load_dataset
    >>> from gansweep.hparams import resolve_hyperparameters
    >>> from gansweep.trainer import Trainer
    >>> digits = load_dataset("mnist-5k")
    >>> hp = resolve_hyperparameters("cs231n-mlp", {"epochs": 1, "batch_size": 500})
    >>> history = Trainer("cs231n-mlp", digits, hp, seed=0).fit()
    >>> len(history.epochs), sorted(history.epochs[0])[:3]
    (1, ['d_fake', 'd_grad_norm', 'd_loss'])

Edge cases: the last partial batch of an epoch is dropped (every step sees ``batch_size`` images); a
non-finite loss ends the trial after that epoch with ``history.stopped`` saying so; a callback may end
it early with ``trainer.request_stop(reason)``. ``amp`` asks for bf16 autocast, which the trainer takes only
where it measures faster than fp32 (``AMP_STEPS``): ``trainer.precision`` says which it trains in.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from gansweep.data import Digits, device_images
from gansweep.hparams import Hyperparameters
from gansweep.losses import LOSSES, info_loss
from gansweep.models import MODELS, InfoDiscriminator, Latent, ModelSpec
from gansweep.streams import global_streams, own_streams

STEP_METRICS = ("d_loss", "g_loss", "d_real", "d_fake", "info_loss")
"""Recorded for every generator step; ``info_loss`` is 0 for models without a Q head."""
NORM_METRICS = ("g_grad_norm", "d_grad_norm")
"""Gradient norms, measured at each epoch's last step (every step would cost a pass over all grads)."""
N_FIXED = 100
"""Fixed latent vectors per trial: a 10x10 grid, one row per class for the conditional models."""


FUSED_ADAM = ("cpu", "cuda")
"""Devices with a fused Adam kernel in every torch this package allows (>= 2.4: the CPU one came then).
One kernel for all of a network's parameters instead of a loop over them: 18 % less training time for
cs231n-mlp on 2 CPU cores, each step equal to the loop's within 1.2e-7 (``benchmarks/RESULTS.md``)."""


PRECISIONS = ("fp32", "bf16")
"""What a trial trains in: fp32, or bf16 autocast (weights, optimiser states and losses stay fp32)."""
AMP_STEPS = 3
"""With ``amp``: training steps timed in each precision, twice over, after one untimed step each (cuDNN's
algorithm search, autocast's first casts); the trial trains in the faster. bf16 is no sure win: on an H200
it ran dcgan28 width 128 at 0.43x fp32 and cs231n-mlp at 0.87x (issue 25), on 2 CPU cores 1.3-2.3x faster.
Three steps each: 14 steps on copies of the networks, against the hundreds an epoch of full MNIST makes."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is passed to ``torch.device``."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_problem(name: str, here: bool = True) -> str | None:
    """Why ``name`` is no device of this machine (``here`` false: of any machine), or None: checked before
    any work starts."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        return f"{name!r} is not a device: auto, cpu, cuda, cuda:N or mps"
    if device.type not in ("cpu", "cuda", "mps") or (device.type == "cpu" and device.index):
        # torch names more (meta, xla, cpu:1) than a trial trains on: each failed every trial
        return f"{name!r} is not a device gansweep trains on: auto, cpu, cuda, cuda:N or mps"
    if not here:
        return None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        return f"{name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return f"{name!r}: this machine has no MPS device"
    return None


@dataclass
class History:
    """Per-step and per-epoch metrics, and the fixed-latent samples at epoch 0 and after each epoch."""

    steps: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STEP_METRICS})
    epochs: list[dict[str, float]] = field(default_factory=list)
    samples: list[torch.Tensor] = field(default_factory=list)
    """uint8 images (N_FIXED, 1, H, W) on the CPU, index = epoch (0 = before training)."""
    stopped: str | None = None
    """Why training ended before its last epoch, if it did."""

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps": self.steps, "stopped": self.stopped}


class TrainerCallback:
    """Hooks the trainer calls; override what you need. ``on_step`` gets no values: reading a loss
    there would force a device sync every step."""

    def on_start(self, trainer: Trainer) -> None: ...

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None: ...

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None: ...

    def on_end(self, trainer: Trainer, history: History) -> None: ...


def precision_line(trainer: Trainer) -> str:
    """What ``amp``'s measurement found and chose, for a progress line."""
    rates = ", ".join(f"{name} {rate:.0f} img/s" for name, rate in trainer.precision_rates.items())
    return f"amp measured {rates}: trains in {trainer.precision}"


def _synchronize(device: torch.device) -> None:
    """Waits for the work queued on ``device`` (a clock around queued kernels measures only their launch)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _to_uint8(images: torch.Tensor, output: str) -> torch.Tensor:
    unit = (images.float() + 1) / 2 if output == "tanh" else images.float()
    return (unit.clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def _split_parameters(generator: torch.nn.Module, discriminator: torch.nn.Module) -> tuple[list, list]:
    """(G's optimiser's parameters, D's): InfoGAN's Q head shares D's front end but learns with G."""
    d = discriminator
    q_head = []
    if isinstance(d, InfoDiscriminator):
        q_head = [*d.q_body.parameters(), *d.q_logits.parameters(), *d.q_mean.parameters(), *d.q_log_var.parameters()]
    q_ids = {id(p) for p in q_head}
    return [*generator.parameters(), *q_head], [p for p in d.parameters() if id(p) not in q_ids]


class Pair(Protocol):
    """What a training step needs: one trial (``Trainer``) or a group of them fused (``gansweep.group``).
    A group's tensors carry its members along a leading dimension: losses of shape (K,) where a trial's
    are scalars."""

    spec: ModelSpec
    hp: Hyperparameters
    device: torch.device
    precision: str | None
    generator: torch.nn.Module
    discriminator: torch.nn.Module
    g_params: list[torch.Tensor]
    d_params: list[torch.Tensor]
    opt_g: Any
    opt_d: Any
    measure: bool
    """True at the epoch's last step, where the gradient norms are measured into ``norms``."""
    norms: dict[str, torch.Tensor]

    amp_steps: int

    @property
    def steps_per_epoch(self) -> int: ...

    @property
    def images_per_step(self) -> int: ...

    def probe(self) -> Pair: ...

    def drawing(self) -> AbstractContextManager: ...

    def sample(self, n: int) -> Latent: ...

    def batch(self, order: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def grad_norm(self, params: list[torch.Tensor]) -> torch.Tensor: ...

    def epoch_order(self) -> torch.Tensor: ...


def autocast(pair: Pair):
    return torch.autocast(pair.device.type, dtype=torch.bfloat16, enabled=pair.precision == "bf16")


def _backward(loss: torch.Tensor) -> None:
    loss.backward(torch.ones_like(loss))  # a group's losses are one per member: each member's own gradient


def discriminator_step(pair: Pair, real: torch.Tensor, real_labels: torch.Tensor | None):
    """One discriminator update on ``real``, against fakes from a fresh latent batch."""
    latent = pair.sample(pair.hp.batch_size)
    loss = LOSSES[pair.hp.loss]
    with autocast(pair):
        fake = pair.generator(latent.z, latent.labels)
        real_scores = pair.discriminator(real, real_labels).float()
        fake_scores = pair.discriminator(fake.detach(), latent.labels).float()
    d_loss = loss.discriminator(real_scores, fake_scores)
    pair.opt_d.zero_grad(set_to_none=True)
    _backward(d_loss)
    if pair.measure:
        pair.norms["d_grad_norm"] = pair.grad_norm(pair.d_params)
    pair.opt_d.step()
    return latent, fake, d_loss.detach(), real_scores.detach(), fake_scores.detach()


def generator_step(pair: Pair, latent: Latent, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One generator update on the fakes of the last discriminator update (and InfoGAN's Q head with it)."""
    for p in pair.d_params:  # D's weight gradients are not needed here: skip computing them
        p.requires_grad_(False)
    with autocast(pair):
        info = None
        if isinstance(pair.discriminator, InfoDiscriminator):
            assert latent.labels is not None and latent.continuous is not None  # InfoGAN's c1, c2, c3
            scores, q = pair.discriminator.with_q(fake)
            logits, mean, var = (t.float() for t in q)
            info = info_loss(logits, mean, var, latent.labels, latent.continuous)
        else:
            scores = pair.discriminator(fake, latent.labels)
    g_loss = LOSSES[pair.hp.loss].generator(scores.float())
    info = torch.zeros_like(g_loss) if info is None else info
    pair.opt_g.zero_grad(set_to_none=True)
    _backward(g_loss + info)
    for p in pair.d_params:
        p.requires_grad_(True)
    if pair.measure:
        pair.norms["g_grad_norm"] = pair.grad_norm(pair.g_params)
    pair.opt_g.step()
    return g_loss.detach(), info.detach()


def train_step(pair: Pair, order: torch.Tensor, step: int) -> torch.Tensor:
    """Training step ``step`` of an epoch that draws its batches in ``order``: ``d_steps`` discriminator
    updates, then one generator update; returns its ``STEP_METRICS`` on the device (last dimension)."""
    for k in range(pair.hp.d_steps):
        real, real_labels = pair.batch(order, step * pair.hp.d_steps + k)
        latent, fake, d_loss, real_s, fake_s = discriminator_step(pair, real, real_labels)
    g_loss, info = generator_step(pair, latent, fake)
    prob = LOSSES[pair.hp.loss].probability
    return torch.stack([d_loss, g_loss, prob(real_s).mean(-1), prob(fake_s).mean(-1), info], dim=-1)


def train_epoch(pair: Pair, order: torch.Tensor, on_step) -> torch.Tensor:
    """One epoch's steps; their metrics, read back to the CPU once at its end: (steps, ..., metrics)."""
    n_steps = pair.steps_per_epoch
    record: torch.Tensor | None = None
    for step in range(n_steps):
        pair.measure = step == n_steps - 1
        values = train_step(pair, order, step)
        if record is None:
            record = values.new_zeros((n_steps, *values.shape))
        record[step] = values
        on_step(step)
    assert record is not None  # an epoch has at least one step (batch_size is at most the data set)
    return record.cpu()  # the epoch's one host sync


class Trainer:
    """Trains ``model`` on ``digits`` with hyperparameters ``hp`` from ``seed``.

    ``amp`` asks for bf16 autocast: ``fit`` first times ``amp_steps`` steps each way and trains in the
    faster (``precision``; the rates in ``precision_rates``); ``amp_steps=0`` takes bf16 unmeasured (for
    comparing the two). Same seed, same device, same precision -> the same history, and
    ``gansweep.checkpoint.load`` continues a run bit for bit on the CPU. ``gansweep.group`` trains several
    trainers together; each is still its own trial (history, callbacks, checkpoints).
    """

    def __init__(
        self,
        model: str,
        digits: Digits,
        hp: Hyperparameters,
        seed: int = 0,
        device: str | torch.device = "auto",
        amp: bool = False,
        callbacks: list[TrainerCallback] | None = None,
        amp_steps: int = AMP_STEPS,
    ) -> None:
        self.spec = MODELS[model]
        self.hp = hp
        self.seed = seed
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.amp = amp
        self.amp_steps = amp_steps
        self.precision: str | None = "fp32" if not amp else None if amp_steps else "bf16"
        """fp32 or bf16 (``PRECISIONS``); None until ``fit`` has measured which ``amp`` trains in."""
        self.precision_rates: dict[str, float] = {}
        """Images/s measured in each precision at the start (with ``amp``; a resumed trial keeps its choice)."""
        self.callbacks = callbacks or []
        # Every step has one shape (the last partial batch is dropped): cuDNN times its algorithms once per
        # shape and keeps the fastest, where its heuristic may pick a slow one, for bf16 especially.
        torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark or self.device.type == "cuda"
        torch.manual_seed(seed)  # the networks' initialisation draws from the global generator
        self.rng = torch.Generator(self.device).manual_seed(seed)
        self.images, self.labels = device_images(digits, self.spec.image_size, self.spec.output, self.device)
        self.generator, self.discriminator = (net.to(self.device) for net in self.spec.build(hp.latent_dim, hp.width))
        self.streams = global_streams(self.device)
        """The global generators' states this trial's dropout draws from (``own_streams``), from ``seed``."""
        self.g_params, self.d_params = _split_parameters(self.generator, self.discriminator)
        self.opt_g, self.opt_d = _adams(self)
        rows = torch.arange(10, device=self.device).repeat_interleave(N_FIXED // 10)  # one row per class
        fixed_rng = torch.Generator(self.device).manual_seed(seed + 1)
        self.fixed = self.spec.sample_latent(N_FIXED, hp.latent_dim, fixed_rng, self.device, labels=rows)
        self.history = History()
        self.epoch = 0
        self._stop: str | None = None
        self.measure = False
        self.norms: dict[str, torch.Tensor] = {}

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // (self.hp.batch_size * self.hp.d_steps)

    @property
    def images_per_step(self) -> int:
        return self.hp.batch_size * self.hp.d_steps

    @property
    def training(self) -> bool:
        """Whether epochs remain and nothing asked to stop."""
        return self.epoch < self.hp.epochs and self._stop is None

    def request_stop(self, reason: str) -> None:
        """Ends training after the current epoch; ``history.stopped`` records ``reason``."""
        self._stop = reason

    def sample(self, n: int) -> Latent:
        return self.spec.sample_latent(n, self.hp.latent_dim, self.rng, self.device)

    def batch(self, order: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The ``i``-th batch of an epoch drawn in ``order``: images, and labels where D is conditioned on them."""
        idx = order[i * self.hp.batch_size :][: self.hp.batch_size]
        return self.images[idx], self.labels[idx] if self.spec.conditioning == "label" else None

    def grad_norm(self, params: list[torch.Tensor]) -> torch.Tensor:
        return _grad_norm(params)

    def epoch_order(self) -> torch.Tensor:
        return torch.randperm(len(self.images), generator=self.rng, device=self.device)

    def probe(self) -> Trainer:
        """A copy to time steps on: its own networks, optimisers and generators; the trial is untouched."""
        probe = copy.copy(self)
        probe.generator, probe.discriminator = copy.deepcopy(self.generator), copy.deepcopy(self.discriminator)
        probe.g_params, probe.d_params = _split_parameters(probe.generator, probe.discriminator)
        probe.opt_g, probe.opt_d = _adams(probe)
        probe.rng = torch.Generator(self.device).manual_seed(self.seed)
        probe.measure, probe.norms = False, {}
        return probe

    def drawing(self) -> AbstractContextManager:
        """Where this trial's steps draw their dropout masks from its own stream."""
        return own_streams(self)

    def _run_epoch(self) -> dict[str, float]:
        started = time.perf_counter()
        order = self.epoch_order()
        with self.drawing():
            per_step = train_epoch(self, order, self.stepped)
        norms = {key: float(value) for key, value in self.norms.items()}
        return self.record(per_step, norms, time.perf_counter() - started)

    def stepped(self, step: int) -> None:
        for callback in self.callbacks:
            callback.on_step(self, self.epoch + 1, step)

    def record(self, per_step: torch.Tensor, norms: dict[str, float], seconds: float) -> dict[str, float]:
        """The record of an epoch that took ``seconds``, from its per-step metrics (steps, metrics) and
        gradient norms; the per-step values go into the history."""
        for i, key in enumerate(STEP_METRICS):
            self.history.steps[key].extend(per_step[:, i].tolist())
        means = dict(zip(STEP_METRICS, per_step.mean(dim=0).tolist()))
        rate = len(per_step) * self.images_per_step / seconds
        return {"epoch": self.epoch + 1, **means, **norms, "seconds": seconds, "images_per_s": rate}

    def begin(self) -> None:
        """Before the first epoch trained here: the callbacks' start, and the samples before training."""
        for callback in self.callbacks:
            callback.on_start(self)
        if not self.history.samples:
            self.history.samples.append(render(self, self.fixed))

    def end_epoch(self, record: dict[str, float]) -> None:
        """After an epoch: its record and samples into the history, a stop on a non-finite loss, the callbacks."""
        self.epoch += 1
        self.history.epochs.append(record)
        self.history.samples.append(render(self, self.fixed))
        if not (math.isfinite(record["d_loss"]) and math.isfinite(record["g_loss"])):
            self.request_stop(f"non-finite loss in epoch {self.epoch}")
        for callback in self.callbacks:
            callback.on_epoch(self, record)

    def end(self) -> History:
        self.history.stopped = self._stop
        for callback in self.callbacks:
            callback.on_end(self, self.history)
        return self.history

    def fit(self) -> History:
        """Trains the remaining epochs and returns the history (also kept as ``self.history``)."""
        if self.precision is None:
            self.precision, self.precision_rates = choose_precision(self)
        self.begin()
        while self.training:
            self.end_epoch(self._run_epoch())
        return self.end()


def choose_precision(pair: Pair) -> tuple[str, dict[str, float]]:
    """bf16 if it trains faster than fp32 on this device, with the rates measured: ``amp_steps`` steps timed
    each way, twice over, the better of each kept. They train a ``probe``: copies of the networks and
    optimisers, generators of their own, dropout streams of their own: the trial trains as it would have."""
    probe, steps = pair.probe(), pair.amp_steps
    rates = dict.fromkeys(PRECISIONS, 0.0)
    with probe.drawing():
        for precision in PRECISIONS:
            images_per_second(probe, precision, 1)
        for _ in range(2):
            for precision in PRECISIONS:
                rates[precision] = max(rates[precision], images_per_second(probe, precision, steps))
    return ("bf16" if rates["bf16"] > rates["fp32"] else "fp32"), rates


def images_per_second(pair: Pair, precision: str, steps: int) -> float:
    """Images/s of ``steps`` training steps of ``pair`` in ``precision`` (which it keeps); a group's are
    its members' together."""
    pair.precision = precision
    order = pair.epoch_order()
    _synchronize(pair.device)
    started = time.perf_counter()
    for step in range(steps):
        train_step(pair, order, step % pair.steps_per_epoch)
    _synchronize(pair.device)
    return steps * pair.images_per_step / (time.perf_counter() - started)


def _adams(trainer: Trainer) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    hp, fused = trainer.hp, trainer.device.type in FUSED_ADAM
    return (
        torch.optim.Adam(trainer.g_params, lr=hp.lr_g, betas=hp.betas, fused=fused),
        torch.optim.Adam(trainer.d_params, lr=hp.lr_d, betas=hp.betas, fused=fused),
    )


@torch.no_grad()
def render(trainer: Trainer, latent: Latent) -> torch.Tensor:
    """uint8 images of ``latent``, generated in eval mode (pictures draw panels with it)."""
    trainer.generator.eval()
    with autocast(trainer):
        images = trainer.generator(latent.z, latent.labels)
    trainer.generator.train()
    return _to_uint8(images, trainer.spec.output)


def generate(trainer: Trainer, n: int, seed: int, batch: int = 500) -> torch.Tensor:
    """``n`` uint8 samples of ``trainer``'s generator from latents drawn with their own ``seed`` (the
    training RNG is untouched)."""
    rng = torch.Generator(trainer.device).manual_seed(seed)
    sizes = [min(batch, n - i) for i in range(0, n, batch)]
    latents = (trainer.spec.sample_latent(k, trainer.hp.latent_dim, rng, trainer.device) for k in sizes)
    return torch.cat([render(trainer, latent) for latent in latents])
