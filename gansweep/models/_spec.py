"""What the zoo knows about a model: its builder, image size, latent layout and report defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

N_CLASSES = 10
N_CONTINUOUS = 2
"""InfoGAN's MNIST codes: one 10-way categorical c1 and two continuous c2, c3 (width, rotation)."""


@dataclass(frozen=True)
class Latent:
    """One batch of generator inputs.

    ``z`` is what the generator sees (for InfoGAN: noise, one-hot c1 and c2/c3 concatenated); ``labels``
    are class labels (the condition for ``cgan``, c1 for InfoGAN); ``continuous`` is InfoGAN's c2/c3.
    """

    z: torch.Tensor
    labels: torch.Tensor | None = None
    continuous: torch.Tensor | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry. ``build(latent_dim, width)`` returns ``(generator, discriminator)``.

    Generators map ``(z, labels)`` to images; discriminators map ``(images, labels)`` to raw scores of
    shape ``(N,)``. An InfoGAN discriminator also has ``with_q(images)`` returning the scores and the Q
    head's ``(c1 logits, c2/c3 means, c2/c3 variances)`` from one pass through the shared front end.
    """

    name: str
    summary: str
    source: str
    image_size: int
    output: Literal["tanh", "sigmoid"]
    build: Callable[[int, int | None], tuple[nn.Module, nn.Module]]
    defaults: dict[str, Any]
    noise: Literal["normal", "uniform"] = "normal"
    conditioning: Literal["none", "label", "info"] = "none"
    extra_hyperparameters: frozenset[str] = field(default_factory=frozenset)
    """Hyperparameters beyond the common ones that this model takes (``width`` for the DCGANs)."""

    def input_dim(self, latent_dim: int) -> int:
        return latent_dim + (N_CLASSES + N_CONTINUOUS if self.conditioning == "info" else 0)

    def sample_latent(
        self,
        n: int,
        latent_dim: int,
        generator: torch.Generator | None,
        device: torch.device,
        labels: torch.Tensor | None = None,
    ) -> Latent:
        """Draws ``n`` generator inputs. ``labels`` fixes the class/c1 (fixed grids use one per row)."""
        if self.noise == "uniform":
            noise = torch.rand(n, latent_dim, generator=generator, device=device) * 2 - 1
        else:
            noise = torch.randn(n, latent_dim, generator=generator, device=device)
        if self.conditioning == "none":
            return Latent(noise)
        if labels is None:
            labels = torch.randint(N_CLASSES, (n,), generator=generator, device=device)
        if self.conditioning == "label":
            return Latent(noise, labels)
        continuous = torch.rand(n, N_CONTINUOUS, generator=generator, device=device) * 2 - 1
        one_hot = F.one_hot(labels, N_CLASSES).to(noise.dtype)
        return Latent(torch.cat([noise, one_hot, continuous], dim=1), labels, continuous)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def initialised(
    generator: nn.Module, discriminator: nn.Module, init: Callable[[nn.Module], None]
) -> tuple[nn.Module, nn.Module]:
    """Applies ``init`` to both networks and returns them as the builder's pair."""
    init(generator)
    init(discriminator)
    return generator, discriminator
