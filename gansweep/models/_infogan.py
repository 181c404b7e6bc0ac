"""InfoGAN: the paper's MNIST network (reports 001/003, ``infogan28``) and report 000 §4's 64x64 one.

D and Q share a front end; ``with_q`` runs it once and returns both heads, so the generator step pays
for one pass. Q's variance head is ``exp`` of a 1x1 conv, as the reports write it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gansweep.models._conv import ConvGenerator
from gansweep.models._spec import N_CLASSES, N_CONTINUOUS, dcgan_init, initialised


class InfoDiscriminator(nn.Module):
    """Shared front end -> D head (one raw score) and Q head (c1 logits, c2/c3 mean and variance)."""

    def __init__(self, front: nn.Module, features: int, q_hidden: int) -> None:
        super().__init__()
        self.front = front
        self.d_head = nn.Conv2d(features, 1, 1)
        self.q_body = nn.Sequential(
            nn.Conv2d(features, q_hidden, 1, bias=False), nn.BatchNorm2d(q_hidden), nn.LeakyReLU(0.1)
        )
        self.q_logits = nn.Conv2d(q_hidden, N_CLASSES, 1)
        self.q_mean = nn.Conv2d(q_hidden, N_CONTINUOUS, 1)
        self.q_log_var = nn.Conv2d(q_hidden, N_CONTINUOUS, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.d_head(self.front(x)).view(-1)

    def with_q(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        h = self.front(x)
        q = self.q_body(h)
        n = x.shape[0]
        heads = (
            self.q_logits(q).view(n, N_CLASSES),
            self.q_mean(q).view(n, N_CONTINUOUS),
            self.q_log_var(q).view(n, N_CONTINUOUS).exp(),
        )
        return self.d_head(h).view(-1), heads


def build_infogan28(latent_dim: int, width: int | None = None) -> tuple[nn.Module, nn.Module]:
    """The paper's MNIST appendix as report 003 prints it: 74 in (62 noise + 12 codes), sigmoid out."""
    generator = nn.Sequential(
        nn.ConvTranspose2d(latent_dim + N_CLASSES + N_CONTINUOUS, 1024, 1, 1, bias=False),
        nn.BatchNorm2d(1024),
        nn.ReLU(),
        nn.ConvTranspose2d(1024, 128, 7, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False),
        nn.Sigmoid(),
    )
    front = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.LeakyReLU(0.1),
        nn.Conv2d(128, 1024, 7, bias=False),
        nn.BatchNorm2d(1024),
        nn.LeakyReLU(0.1),
    )
    return initialised(ConvGenerator(generator), InfoDiscriminator(front, 1024, q_hidden=128), dcgan_init)


def build_infogan64(latent_dim: int, width: int | None = None) -> tuple[nn.Module, nn.Module]:
    """Report 000 §4: latent 50 + 12 codes, 4 -> 8 -> 16 -> 32 -> 64, tanh out; D front ends in an 8x8 conv."""
    generator = nn.Sequential(
        nn.ConvTranspose2d(latent_dim + N_CLASSES + N_CONTINUOUS, 1024, 4, 1, 0),
        nn.BatchNorm2d(1024),
        nn.ReLU(),
        nn.ConvTranspose2d(1024, 256, 4, 2, 1),
        nn.BatchNorm2d(256),
        nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1),
        nn.Tanh(),
    )
    front = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(64, 128, 4, 2, 1),
        nn.BatchNorm2d(128),
        nn.LeakyReLU(0.1),
        nn.Conv2d(128, 256, 4, 2, 1),
        nn.BatchNorm2d(256),
        nn.LeakyReLU(0.1),
        nn.Conv2d(256, 1024, 8, 1, 0),
        nn.BatchNorm2d(1024),
        nn.LeakyReLU(0.1),
    )
    return initialised(ConvGenerator(generator), InfoDiscriminator(front, 1024, q_hidden=64), dcgan_init)
