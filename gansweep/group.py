"""Trials of one shape trained together as one fused model, each still its own trial.

A group takes K trainers that differ only in what changes no tensor's shape and no op: their seeds, learning
rates and betas (and epochs). It fuses their networks (``gansweep.models.fuse``: grouped convolutions and
batched matmuls over the members' stacked tensors) and their Adam optimisers (``GroupAdam``), then trains
one fused step for all K where each would have trained its own. A member keeps everything that makes it a
trial: its initialisation, data order and noise from its own seed, its dropout stream, its BatchNorm
statistics, its history and callbacks, its checkpoints (``gansweep.checkpoint`` saves and loads a member as
it does a solo trainer: its networks' tensors are views of its slices of the group's). A member that
stops (a non-finite loss, a callback's ``request_stop``, its last epoch) leaves after that epoch and the
group is fused again from the others, so its compute is reclaimed.

Example:
    >>> from gansweep.data import load_dataset
    >>> from gansweep.group import Group
    >>> from gansweep.hparams import resolve_hyperparameters
    >>> from gansweep.trainer import Trainer
    >>> digits = load_dataset("mnist-5k")
    >>> def trial(lr):
    ...     hp = resolve_hyperparameters("cs231n-mlp", {"epochs": 1, "batch_size": 500, "lr": lr})
    ...     return Trainer("cs231n-mlp", digits, hp, seed=0, device="cpu")
    >>> histories = Group([trial(1e-3), trial(3e-4)]).fit()
    >>> [len(history.epochs) for history in histories]
    [1, 1]

Where fusion pays is measured, as ``amp`` measures a precision: ``choose_group_size``. On 2 CPU cores a
step is compute-bound and fusion saves nothing; on a GPU a small model's step is a string of launch-bound
kernels, and a fused step launches one member's kernels for all K (``benchmarks/bench_groups.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from gansweep.errors import GansweepError
from gansweep.hparams import Hyperparameters
from gansweep.models import CHANNEL_DISCRIMINATORS, Latent, Slots, fuse
from gansweep.options import MAX_GROUP
from gansweep.trainer import History, Pair, Trainer, choose_precision, images_per_second, train_epoch

SHAPE = ("batch_size", "latent_dim", "loss", "d_steps", "width")
"""The hyperparameters that members of a group share: each changes a tensor's shape or the ops of a step.
The others (``lr_g``, ``lr_d``, ``betas``, ``epochs``) and the seed may differ. A smaller ``latent_dim``
could be padded with zeros up to the group's: on this CPU the first layer's output came out bitwise equal
so padded (transposed conv and linear, 64 -> 100 and 100 -> 256), but a GPU library may pick another
kernel for another size, and InfoGAN's codes sit after the noise: not done, ``latent_dim`` is shape."""
GROUP_STEPS = 3
"""Training steps timed per group size, twice over, after an untimed one (as ``trainer.AMP_STEPS``)."""
GROUP_GAIN = 1.1
"""A group size is taken only where it measured at least 10 % more images/s than the one before it: on the
2 shared CPU cores, the best of two such measurements of one step moved by up to 6 % between runs
(benchmarks/RESULTS.md, groups), so a smaller gain could be noise, and a group that is no faster costs
its members their own workers."""
MOMENTS = ("exp_avg", "exp_avg_sq")


class GroupError(GansweepError, ValueError):
    """Trainers that cannot share one fused step."""


def shape(model: str, hp: Hyperparameters) -> tuple[Any, ...]:
    """What trials must share to be trained in one group (with the device, data set and precision)."""
    return (model, *(getattr(hp, name) for name in SHAPE))


@dataclass
class _Call:
    """The lists of one fused-Adam kernel call: the members that share lr, betas, eps and weight decay."""

    params: list[torch.Tensor] = field(default_factory=list)
    grads: list[torch.Tensor] = field(default_factory=list)
    exp_avgs: list[torch.Tensor] = field(default_factory=list)
    exp_avg_sqs: list[torch.Tensor] = field(default_factory=list)
    steps: list[torch.Tensor] = field(default_factory=list)


class GroupAdam:
    """The members' Adam optimisers as one, over the fused parameters.

    Each member's update is torch's own fused Adam kernel (``torch._fused_adam_``, what ``Adam(fused=True)``
    runs on cpu and cuda) on its slices of the stacked parameters, gradients and moments, with its own lr
    and betas: the arithmetic its solo optimiser does, element for element. Members that share lr and
    betas share one kernel call. Each member's own ``torch.optim.Adam`` keeps its settings and sees its
    moments as views of the stacked ones, so its ``state_dict`` is its solo trial's. Where torch has no
    fused kernel (mps) each member's optimiser steps on its own slices.
    """

    def __init__(self, optimizers: list[torch.optim.Optimizer], slots: Slots) -> None:
        self.optimizers = optimizers
        self.params = [slots[id(p)].fused for p in optimizers[0].param_groups[0]["params"]]
        self.grads = [torch.zeros_like(p) for p in self.params]
        """Each step's gradients, copied in by one kernel: the members' slices of them stay put."""
        moments = [{name: torch.zeros_like(p) for name in MOMENTS} for p in self.params]
        self.steps: list[torch.Tensor] = []
        self.calls: dict[tuple[float, ...], _Call] = {}
        self.fused = all(opt.param_groups[0]["fused"] for opt in optimizers)
        for opt in optimizers:
            (group,) = opt.param_groups
            call = self.calls.setdefault((group["lr"], *group["betas"], group["eps"], group["weight_decay"]), _Call())
            for p, grad, stacked in zip(group["params"], self.grads, moments):
                slot, state = slots[id(p)], opt.state.get(p, {})
                for name, tensor in stacked.items():
                    if name in state:  # a member resumed from its checkpoint, or regrouped
                        slot.view(tensor).copy_(state[name])
                # its own count: a loaded state may share its tensors with the optimiser it came from
                step = (
                    state["step"].clone()
                    if "step" in state
                    else torch.tensor(0.0, device=p.device if group["fused"] else "cpu")
                )
                opt.state[p] = {"step": step, **{name: slot.view(tensor) for name, tensor in stacked.items()}}
                call.params.append(slot.block(slot.fused.detach()))
                call.grads.append(slot.block(grad))
                call.exp_avgs.append(slot.block(stacked["exp_avg"]))
                call.exp_avg_sqs.append(slot.block(stacked["exp_avg_sq"]))
                call.steps.append(step)
                self.steps.append(step)
                if not self.fused:
                    p.grad = slot.view(grad)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        # every parameter of the zoo's networks gets a gradient at every step of its optimiser
        torch._foreach_copy_(self.grads, [cast(torch.Tensor, p.grad) for p in self.params])
        if not self.fused:
            for opt in self.optimizers:
                opt.step()
            return
        torch._foreach_add_(self.steps, 1)
        for (lr, beta1, beta2, eps, weight_decay), call in self.calls.items():
            torch._fused_adam_(
                call.params,
                call.grads,
                call.exp_avgs,
                call.exp_avg_sqs,
                [],
                call.steps,
                lr=lr,
                beta1=beta1,
                beta2=beta2,
                weight_decay=weight_decay,
                eps=eps,
                amsgrad=False,
                maximize=False,
            )


def _check(members: list[Trainer]) -> None:
    if not members:
        raise GroupError("a group needs at least one member")
    first = members[0]
    for member in members[1:]:
        if shape(member.spec.name, member.hp) != shape(first.spec.name, first.hp):
            raise GroupError(
                f"members differ in model or in one of {', '.join(SHAPE)}: "
                f"{shape(first.spec.name, first.hp)} and {shape(member.spec.name, member.hp)}"
            )
        if (member.device, member.amp, member.precision) != (first.device, first.amp, first.precision):
            raise GroupError("members differ in device, amp or precision")
        if member.images is not first.images:
            raise GroupError("members train on different data")


class Group:
    """Trains ``members`` (trainers of one ``shape``, on one device and data set) as one fused model.

    ``fit`` returns each member's history, in the members' order; a member's callbacks see the member
    itself, as in a solo ``Trainer.fit``. With ``amp``, the fused step's precision is measured as a solo
    trial's is (``trainer.choose_precision``) and every member trains in it.
    """

    def __init__(self, members: list[Trainer]) -> None:
        _check(members)
        first = members[0]
        self.spec, self.hp, self.device = first.spec, first.hp, first.device
        self.images, self.labels = first.images, first.labels
        self.precision, self.amp_steps = first.precision, first.amp_steps
        self.members = list(members)
        self.errors: dict[Trainer, Exception] = {}
        """Members whose callbacks raised: each left the group at that point, the others trained on."""
        self.measure = False
        self.norms: dict[str, torch.Tensor] = {}
        self._fuse()

    def _fuse(self) -> None:
        """Fuses the members' networks and optimisers (again, after a member left)."""
        members = self.members
        self.generator, g_slots = fuse([m.generator for m in members], members)  # dropout draws from each's streams
        self.discriminator, d_slots = fuse([m.discriminator for m in members], members)
        slots = {**g_slots, **d_slots}
        self.g_params = [slots[id(p)].fused for p in members[0].g_params]
        self.d_params = [slots[id(p)].fused for p in members[0].d_params]
        self.opt_g = GroupAdam([m.opt_g for m in members], slots)
        self.opt_d = GroupAdam([m.opt_d for m in members], slots)
        self.rngs = [m.rng for m in members]
        self.stacked_images = not isinstance(self.discriminator, CHANNEL_DISCRIMINATORS)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // (self.hp.batch_size * self.hp.d_steps)

    @property
    def images_per_step(self) -> int:
        """Of all members together."""
        return self.hp.batch_size * self.hp.d_steps * len(self.members)

    def sample(self, n: int) -> Latent:
        """Each member's latents from its own generator, stacked: (K, n, ...)."""
        latents = [
            self.spec.sample_latent(n, m.hp.latent_dim, rng, self.device) for m, rng in zip(self.members, self.rngs)
        ]
        labels, codes = latents[0].labels, latents[0].continuous
        return Latent(
            torch.stack([latent.z for latent in latents]),
            None if labels is None else torch.stack([latent.labels for latent in latents]),  # type: ignore[misc]
            None if codes is None else torch.stack([latent.continuous for latent in latents]),  # type: ignore[misc]
        )

    def batch(self, order: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each member's ``i``-th batch of its own ``order`` row, in the layout its discriminator takes."""
        idx = order[:, i * self.hp.batch_size : (i + 1) * self.hp.batch_size]  # (K, N)
        labels = self.labels[idx] if self.spec.conditioning == "label" else None
        if self.stacked_images:
            return self.images[idx], labels  # (K, N, 1, H, W)
        return self.images[idx.t()].flatten(1, 2), labels  # (N, K, H, W): one image channel per member

    def grad_norm(self, params: list[torch.Tensor]) -> torch.Tensor:
        """Each member's gradient norm over ``params``: (K,)."""
        k = len(self.members)
        norms = torch.stack([torch.linalg.vector_norm(p.grad.view(k, -1), dim=1) for p in params if p.grad is not None])
        return torch.linalg.vector_norm(norms, dim=0)

    def epoch_order(self) -> torch.Tensor:
        """Each member's data order for the epoch, from its own generator: (K, images)."""
        return torch.stack([torch.randperm(len(self.images), generator=rng, device=self.device) for rng in self.rngs])

    def drawing(self) -> contextlib.AbstractContextManager:
        """Each member's dropout draws from its own stream inside the fused dropout layers."""
        return contextlib.nullcontext()

    def probe(self) -> Group:
        """A group of the members' probes (``Trainer.probe``): steps to time, the members untouched."""
        return Group([m.probe() for m in self.members])

    def stepped(self, step: int) -> None:
        self._each(lambda member: member.stepped(step))

    def _each(self, action: Callable[[Trainer], object]) -> None:
        """``action`` on each member; one whose callbacks raise is noted in ``errors``, and leaves."""
        for member in self.members:
            if member not in self.errors:
                try:
                    action(member)
                except Exception as error:  # its own: a tracking store that failed, its trial taken over
                    self.errors[member] = error

    def fit(self) -> list[History]:
        """Trains every member's remaining epochs; returns their histories, in the members' order."""
        everyone = list(self.members)
        if self.precision is None:
            precision, rates = choose_precision(self)
            for member in self.members:
                member.precision, member.precision_rates = precision, rates
            self.precision = precision
        self._each(lambda member: member.begin())
        self._leave()
        while self.members:
            self._run_epoch()
            self._leave()
        return [member.history for member in everyone]

    def _run_epoch(self) -> None:
        started = time.perf_counter()
        per_step = train_epoch(self, self.epoch_order(), self.stepped)  # (steps, K, metrics)
        seconds = time.perf_counter() - started
        norms = {key: value.tolist() for key, value in self.norms.items()}
        records = {}
        for k, member in enumerate(self.members):
            own = {key: values[k] for key, values in norms.items()}
            records[member] = member.record(per_step[:, k].contiguous(), own, seconds)
        self._each(lambda member: member.end_epoch(records[member]))

    def _leave(self) -> None:
        """Members that stopped or finished leave, each with tensors of its own; the rest are fused again."""
        leaving = [m for m in self.members if not m.training or m in self.errors]
        if not leaving:
            return
        for member in leaving:
            _standalone(member)
        self._each(lambda member: member.end() if member in leaving else None)
        self.members = [m for m in self.members if m not in leaving]
        if self.members:
            self._fuse()


def _standalone(member: Trainer) -> None:
    """Gives a leaving member compact copies of its tensors (views would keep the group's storage alive)."""
    for net in (member.generator, member.discriminator):
        for tensor in (*net.parameters(), *net.buffers()):
            tensor.data = tensor.data.clone(memory_format=torch.contiguous_format)
    for opt in (member.opt_g, member.opt_d):
        for param, state in opt.state.items():
            param.grad = None
            for name in MOMENTS:
                state[name] = state[name].clone(memory_format=torch.contiguous_format)


def choose_group_size(
    make: Callable[[int], Trainer], largest: int = MAX_GROUP, steps: int = GROUP_STEPS
) -> tuple[int, dict[int, float]]:
    """How many trials of one shape to train per group on this device, with the images/s measured (of all
    members together) for each size tried. ``make(seed)`` builds a throwaway trainer of that shape.

    Sizes double from 1 (each trial on its own: ``Trainer`` steps) while each measures ``GROUP_GAIN`` times
    the images/s of the size before it, up to ``largest``; each pair is timed side by side, ``steps``
    steps twice over after an untimed one, the better kept. Timed in fp32."""
    size, rates = 1, dict[int, float]()
    while size * 2 <= largest:
        pairs: dict[int, Pair] = {
            n: make(0) if n == 1 else Group([make(seed) for seed in range(n)]) for n in (size, size * 2)
        }
        for n, rate in _rates(pairs, steps).items():
            rates[n] = max(rates.get(n, 0.0), rate)
        if rates[size * 2] < GROUP_GAIN * rates[size]:
            break
        size *= 2
    return size, rates


def _rates(pairs: dict[int, Pair], steps: int) -> dict[int, float]:
    rates = dict.fromkeys(pairs, 0.0)
    for _ in range(2):
        for n, pair in pairs.items():
            with pair.drawing():
                if not rates[n]:
                    images_per_second(pair, "fp32", 1)  # untimed: the first step's allocations, cuDNN's search
                rates[n] = max(rates[n], images_per_second(pair, "fp32", steps))
    return rates


__all__ = ["Group", "GroupAdam", "GroupError", "choose_group_size", "shape"]
