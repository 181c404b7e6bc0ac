"""Fully connected GANs: report 000 §3 (``mlp``), report 002 (``cs231n-mlp``) and report 004 (``cgan``)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gansweep.models._spec import N_CLASSES, initialised

PIXELS = 28 * 28


class ImageGenerator(nn.Module):
    """Wraps a network from latent vectors to 784 pixels (or to images: cs231n-dcgan's ends in a
    transposed conv); returns (N, 1, 28, 28) images. Written over the last dimensions, as the other MLP
    wrappers here, so that a group's members stacked in front, (K, N, ...), pass through unchanged."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.net(z)
        return out if out.dim() == 4 else out.unflatten(-1, (1, 28, 28))


class ImageDiscriminator(nn.Module):
    """Wraps a network from 784 pixels to one raw score per image."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(-3)).squeeze(-1)


def build_mlp(latent_dim: int, width: int | None = None) -> tuple[nn.Module, nn.Module]:
    """Report 000 §3 (after debuggercafe's vanilla GAN): LeakyReLU 0.2 throughout, dropout 0.3 in D."""
    generator = nn.Sequential(
        nn.Linear(latent_dim, 256),
        nn.LeakyReLU(0.2),
        nn.Linear(256, 512),
        nn.LeakyReLU(0.2),
        nn.Linear(512, 1024),
        nn.LeakyReLU(0.2),
        nn.Linear(1024, PIXELS),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Linear(PIXELS, 1024),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.3),
        nn.Linear(1024, 512),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.3),
        nn.Linear(512, 256),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.3),
        nn.Linear(256, 1),
    )
    return ImageGenerator(generator), ImageDiscriminator(discriminator)


def xavier_init(module: nn.Module) -> None:
    """CS231n's ``initialize_weights``: Xavier-uniform weights for linear and transposed-conv layers."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)


def build_cs231n_mlp(latent_dim: int, width: int | None = None) -> tuple[nn.Module, nn.Module]:
    """Report 002, vanilla GAN: G 1024-1024 ReLU, D 256-256 LeakyReLU 0.01, logits out."""
    generator = nn.Sequential(
        nn.Linear(latent_dim, 1024),
        nn.ReLU(),
        nn.Linear(1024, 1024),
        nn.ReLU(),
        nn.Linear(1024, PIXELS),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Linear(PIXELS, 256),
        nn.LeakyReLU(0.01),
        nn.Linear(256, 256),
        nn.LeakyReLU(0.01),
        nn.Linear(256, 1),
    )
    return initialised(ImageGenerator(generator), ImageDiscriminator(discriminator), xavier_init)


class ConditionalGenerator(nn.Module):
    """Report 004's second generator: noise and one-hot label each embedded to 256, then concatenated."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.noise = nn.Sequential(nn.Linear(latent_dim, 256), nn.BatchNorm1d(256), nn.ReLU())
        self.label = nn.Sequential(nn.Linear(N_CLASSES, 256), nn.BatchNorm1d(256), nn.ReLU())
        self.body = nn.Sequential(
            nn.Linear(512, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(512, 1024),
            nn.BatchNorm1d(1024),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(1024, PIXELS),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert labels is not None, "cgan needs labels"
        one_hot = F.one_hot(labels, N_CLASSES).to(z.dtype)
        h = torch.cat([self.noise(z), self.label(one_hot)], dim=-1)
        return self.body(h).unflatten(-1, (1, 28, 28))


class ConditionalDiscriminator(nn.Module):
    """Report 004's discriminator: image and one-hot label concatenated (794), LeakyReLU 0.2, dropout 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(PIXELS + N_CLASSES, 1024),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.5),
            nn.Linear(1024, 512),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.5),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.5),
            nn.Linear(256, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert labels is not None, "cgan needs labels"
        one_hot = F.one_hot(labels, N_CLASSES).to(x.dtype)
        return self.net(torch.cat([x.flatten(-3), one_hot], dim=-1)).squeeze(-1)


def build_cgan(latent_dim: int, width: int | None = None) -> tuple[nn.Module, nn.Module]:
    return ConditionalGenerator(latent_dim), ConditionalDiscriminator()
