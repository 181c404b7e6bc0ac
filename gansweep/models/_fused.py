"""K networks of one architecture fused into one: every layer holds its members' tensors stacked.

The layouts are HFTA's (Wang et al., MLSys 2021): convolutions take the members' channels side by side,
(N, K*C, H, W), and run as one grouped convolution (groups=K); batch norm over those K*C channels keeps
each member's statistics apart by construction; linear layers take the members stacked in front, (K, N, F),
and run as one batched matmul. A fused step launches the kernels of one member's step, each K times wider. ``torch.func``'s ``vmap`` over stacked parameters does the same for
a convolution by reshaping into this very grouped layout and back around every layer (a copy per
layer); keeping the fused layout from layer to layer avoids those copies.

Fusing rebinds the members: each member's parameters and buffers become views of its slice of the fused
tensors (``Slot``), so a member network still computes its own forward (samples in eval mode) and its
``state_dict`` is its solo trial's, always current.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gansweep.models._conv import ConvDiscriminator, ConvGenerator
from gansweep.models._infogan import InfoDiscriminator
from gansweep.models._mlp import ConditionalDiscriminator, ConditionalGenerator, ImageDiscriminator, ImageGenerator
from gansweep.models._spec import N_CLASSES, N_CONTINUOUS
from gansweep.streams import Owner, global_streams, set_global_streams


@dataclass(frozen=True)
class Slot:
    """Where member ``member`` of ``members`` keeps one of its tensors (of solo shape ``shape``) inside a
    fused one: block ``member`` of the fused tensor seen as (K, -1), contiguous and laid out as the solo
    tensor (so that an element-wise kernel, Adam's, treats every element of it as on the solo tensor)."""

    fused: torch.Tensor
    member: int
    members: int
    shape: torch.Size

    def block(self, like: torch.Tensor) -> torch.Tensor:
        """The member's flat, contiguous slice of ``like``: the fused tensor or one laid out as it (a gradient,
        an Adam moment)."""
        return like.view(self.members, -1)[self.member]

    def view(self, like: torch.Tensor) -> torch.Tensor:
        """The member's slice of ``like`` in its solo shape."""
        return self.block(like).view(self.shape)


Slots = dict[int, Slot]
"""id(a member's tensor) -> its slot."""


class FusedLinear(nn.Module):
    """K linear layers as one batched matmul over (K, N, in); weights (K, out, in), biases (K, 1, out).
    (Stored (K, in, out), as HFTA does, the matmul would need no transposed view, but Adam's kernel would
    meet each member's weight transposed: its vectorised and scalar parts then take other elements, and
    the moments differ from the solo ones in the last bit.)"""

    def __init__(self, weight: nn.Parameter, bias: nn.Parameter) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight.transpose(1, 2))


class FusedBatchNorm1d(nn.BatchNorm1d):
    """Batch norm of K*F features over (K, N, F): the members side by side as its channels, and back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, n = x.shape[:2]
        return super().forward(x.transpose(0, 1).reshape(n, -1)).view(n, k, -1).transpose(0, 1)


class FusedDropout(nn.Module):
    """Each member's dropout on its own slice, drawn from its own stream: the masks its solo trial draws.
    (One dropout per member: a mask of all K at once would come from one stream.)"""

    def __init__(self, p: float, owners: Sequence[Owner]) -> None:
        super().__init__()
        self.p, self.owners = p, owners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        device = self.owners[0].device
        saved, masked = global_streams(device), []  # the global states saved once a layer, not once a member
        try:
            for k, owner in enumerate(self.owners):
                set_global_streams(owner.streams, device)
                masked.append(F.dropout(x[k], self.p, training=True))
                owner.streams = global_streams(device)
        finally:
            set_global_streams(saved, device)
        return torch.stack(masked)


class FusedFlatten(nn.Module):
    """(N, K*C, H, W) -> (K, N, C*H*W): from the convolutions' layout to the linear layers'."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], self.members, -1).transpose(0, 1)


class FusedUnflatten(nn.Module):
    """(K, N, C*H*W) -> (N, K*C, H, W): from the linear layers' layout to the convolutions'."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.sizes = sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1).reshape(x.shape[1], -1, *self.sizes[1:])


class FusedConvGenerator(ConvGenerator):
    """Latents (K, N, L) -> images (N, K, H, W)."""

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.transpose(0, 1).reshape(z.shape[1], -1, 1, 1))


class FusedConvDiscriminator(ConvDiscriminator):
    """Images (N, K, H, W) -> scores (K, N)."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.net(x)  # (N, K, 1, 1), or (K, N, 1) where the net ends in linear layers (cs231n-dcgan)
        return out.squeeze(-1) if out.dim() == 3 else out.view(x.shape[0], -1).t()


def _per_member(out: torch.Tensor, size: int) -> torch.Tensor:
    """(N, K*size, 1, 1) -> (K, N, size)."""
    return out.view(out.shape[0], -1, size).transpose(0, 1)


class FusedInfoDiscriminator(InfoDiscriminator):
    """Images (N, K, H, W) -> scores (K, N), and Q's heads as (K, N, ...)."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.d_head(self.front(x)).view(x.shape[0], -1).t()

    def with_q(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        h = self.front(x)
        q = self.q_body(h)
        heads = (
            _per_member(self.q_logits(q), N_CLASSES),
            _per_member(self.q_mean(q), N_CONTINUOUS),
            _per_member(self.q_log_var(q), N_CONTINUOUS).exp(),
        )
        return self.d_head(h).view(x.shape[0], -1).t(), heads


WRAPPERS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Sequential: nn.Sequential,
    ConvGenerator: FusedConvGenerator,
    ConvDiscriminator: FusedConvDiscriminator,
    InfoDiscriminator: FusedInfoDiscriminator,
    # written over the last dimensions: they take (K, N, ...) as they are
    ImageGenerator: ImageGenerator,
    ImageDiscriminator: ImageDiscriminator,
    ConditionalGenerator: ConditionalGenerator,
    ConditionalDiscriminator: ConditionalDiscriminator,
}
"""Modules of modules: the fused one is of the class on the right, with each child fused."""
STATELESS = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.MaxPool2d)
"""Element- or channel-wise, without tensors: the same module serves any layout."""
CHANNEL_DISCRIMINATORS = (FusedConvDiscriminator, FusedInfoDiscriminator)
"""Fused discriminators that take images as channels, (N, K, H, W); the others take them stacked, (K, N, 1, H, W)."""


def fuse(members: list[nn.Module], owners: Sequence[Owner]) -> tuple[nn.Module, Slots]:
    """One network computing all of ``members`` (same architecture) at once, and where each member's
    tensors went. The members' parameters and buffers become views of the fused ones. ``owners`` are
    the trials whose dropout streams the fused dropout layers draw from, in the members' order."""
    slots: Slots = {}
    return _fuse(members, owners, slots), slots


def _fuse(members: list[nn.Module], owners: Sequence[Owner], slots: Slots) -> nn.Module:
    first = members[0]
    if isinstance(first, STATELESS):
        return first
    if type(first) in WRAPPERS:
        kind = WRAPPERS[type(first)]
        fused = kind.__new__(kind)
        nn.Module.__init__(fused)
        for name, _ in first.named_children():
            fused.add_module(name, _fuse([getattr(m, name) for m in members], owners, slots))
        return fused
    if type(first) not in FUSERS:
        raise TypeError(f"no fused form of {type(first).__name__}")
    return FUSERS[type(first)](members, owners, slots)


def _stack(members: list[nn.Module], name: str, slots: Slots, shape: tuple[int, ...]):
    """The members' tensor ``name`` stacked into one of ``shape``; each member's becomes a view of its slot."""
    tensors = [getattr(m, name) for m in members]
    stacked = torch.stack([t.detach() for t in tensors]).view(shape)
    fused = nn.Parameter(stacked) if isinstance(tensors[0], nn.Parameter) else stacked
    for k, tensor in enumerate(tensors):
        slot = Slot(fused, k, len(members), tensor.shape)
        tensor.data = slot.view(fused.detach())  # the same object (optimisers hold it), now in the fused storage
        slots[id(tensor)] = slot
    return fused


def _linear(members: list[Any], owners: Sequence[Owner], slots: Slots) -> nn.Module:
    k, m = len(members), members[0]
    weight = _stack(members, "weight", slots, (k, m.out_features, m.in_features))
    return FusedLinear(weight, _stack(members, "bias", slots, (k, 1, m.out_features)))


def _conv(members: list[Any], owners: Sequence[Owner], slots: Slots) -> nn.Module:
    k, m = len(members), members[0]
    options = {"stride": m.stride, "padding": m.padding, "dilation": m.dilation, "groups": k * m.groups}
    if isinstance(m, nn.ConvTranspose2d):
        options["output_padding"] = m.output_padding
    fused = type(m)(
        k * m.in_channels, k * m.out_channels, m.kernel_size, bias=m.bias is not None, device="meta", **options
    )
    fused.weight = _stack(members, "weight", slots, (k * m.weight.shape[0], *m.weight.shape[1:]))
    if m.bias is not None:
        fused.bias = _stack(members, "bias", slots, (-1,))
    return fused


def _batch_norm(members: list[Any], owners: Sequence[Owner], slots: Slots) -> nn.Module:
    """Batch norm over K*C channels; ``num_batches_tracked`` becomes (K,), one count per member."""
    m = members[0]
    kind = FusedBatchNorm1d if isinstance(m, nn.BatchNorm1d) else nn.BatchNorm2d
    fused = kind(len(members) * m.num_features, m.eps, m.momentum, device="meta")
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        setattr(fused, name, _stack(members, name, slots, (-1,)))
    return fused


FUSERS: dict[type, Callable[[list[Any], Sequence[Owner], Slots], nn.Module]] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv,
    nn.ConvTranspose2d: _conv,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.Dropout: lambda members, owners, slots: FusedDropout(members[0].p, owners),
    nn.Flatten: lambda members, owners, slots: FusedFlatten(len(members)),
    nn.Unflatten: lambda members, owners, slots: FusedUnflatten(members[0].unflattened_size),
}
"""Layers with tensors (or a layout of their own): their fused forms."""
