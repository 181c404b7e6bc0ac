"""Deconvolutional GANs: report 000 §1 (``dcgan64``), §2 (``dcgan28``) and report 002 (``cs231n-dcgan``).

Layer lists are in ../shared/notes/architectures.md and the reports; D's final sigmoid is left to the
loss (see ``gansweep.losses``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gansweep.models._mlp import ImageGenerator, xavier_init
from gansweep.models._spec import dcgan_init, initialised


def up(c_in: int, c_out: int, kernel: int = 4, stride: int = 2, padding: int = 1) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding), nn.BatchNorm2d(c_out), nn.ReLU()]


def down(
    c_in: int, c_out: int, kernel: int = 4, stride: int = 2, padding: int = 1, slope: float = 0.2
) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding), nn.BatchNorm2d(c_out), nn.LeakyReLU(slope)]


class ConvGenerator(nn.Module):
    """Feeds the latent vector to a transposed-conv stack as a (N, C, 1, 1) map."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class ConvDiscriminator(nn.Module):
    """Runs a conv stack on (N, 1, H, W) images and returns one raw score per image."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).view(-1)


def build_dcgan28(latent_dim: int, width: int | None) -> tuple[nn.Module, nn.Module]:
    """1 -> 4 -> 7 -> 14 -> 28 in G; 28 -> 14 -> 7 -> 4 -> 1 in D (report 000 §2, code printed there)."""
    d = width or 128
    generator = nn.Sequential(
        *up(latent_dim, 4 * d, 4, 1, 0),
        *up(4 * d, 2 * d, 4, 1, 0),
        *up(2 * d, d),
        nn.ConvTranspose2d(d, 1, 4, 2, 1),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(1, d, 4, 2, 1),
        nn.LeakyReLU(0.2),
        *down(d, 2 * d),
        *down(2 * d, 4 * d, 4, 1, 0),
        nn.Conv2d(4 * d, 1, 4, 1, 0),
    )
    return initialised(ConvGenerator(generator), ConvDiscriminator(discriminator), dcgan_init)


def build_dcgan64(latent_dim: int, width: int | None) -> tuple[nn.Module, nn.Module]:
    """1 -> 4 -> 8 -> 16 -> 32 -> 64 in G, the mirror in D (report 000 §1; ~15.2 M G parameters at latent 256)."""
    d = width or 128
    generator = nn.Sequential(
        *up(latent_dim, 8 * d, 4, 1, 0),
        *up(8 * d, 4 * d),
        *up(4 * d, 2 * d),
        *up(2 * d, d),
        nn.ConvTranspose2d(d, 1, 4, 2, 1),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(1, d, 4, 2, 1),
        nn.LeakyReLU(0.2),
        *down(d, 2 * d),
        *down(2 * d, 4 * d),
        *down(4 * d, 8 * d),
        nn.Conv2d(8 * d, 1, 4, 1, 0),
    )
    return initialised(ConvGenerator(generator), ConvDiscriminator(discriminator), dcgan_init)


def build_cs231n_dcgan(latent_dim: int, width: int | None = None) -> tuple[nn.Module, nn.Module]:
    """Report 002: the InfoGAN-appendix generator and a conv + max-pool discriminator (LeakyReLU 0.01).

    The assignment prints ``BatchNorm2d(7*7*128)`` on a flat tensor; its spec says batch norm, so
    ``BatchNorm1d(6272)`` is used.
    """
    generator = nn.Sequential(
        nn.Linear(latent_dim, 1024),
        nn.ReLU(),
        nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128),
        nn.ReLU(),
        nn.BatchNorm1d(7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, 4, 2, 1),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(1, 32, 5, 1),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5, 1),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 64, 1024),
        nn.LeakyReLU(0.01),
        nn.Linear(1024, 1),
    )
    return initialised(ImageGenerator(generator), ConvDiscriminator(discriminator), xavier_init)
