"""Adversarial losses, all computed from the discriminator's raw scores (logits).

Scores may carry a leading dimension (a group's members, ``gansweep.group``): every loss is a mean over
the last dimension, so a group gets one loss per member.

Every seed report ends its discriminator in a sigmoid and feeds ``nn.BCELoss``. That form clamps
``log(0)`` to -100, which is where report 000's "D loss 0.0000, G loss 50" plateaus come from, and it
raises under CUDA autocast. Here D returns logits; the sigmoid survives only as the logged probability.

Example:
    >>> import torch
    >>> from gansweep.losses import LOSSES
    >>> loss = LOSSES["bce"]
    >>> real, fake = torch.tensor([3.0]), torch.tensor([-3.0])
    >>> round(float(loss.discriminator(real, fake)), 4)
    0.0972
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _bce_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    # -log D(x) - log(1 - D(G(z))), summed over the two halves as the DCGAN notebooks do.
    return F.softplus(-real).mean(-1) + F.softplus(fake).mean(-1)


def _non_saturating_generator(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean(-1)  # -log D(G(z))


def _minimax_generator(fake: Tensor) -> Tensor:
    return -F.softplus(fake).mean(-1)  # log(1 - D(G(z))), the saturating original


def _lsgan_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1) ** 2).mean(-1) + 0.5 * (fake**2).mean(-1)  # report 002, eq. 9


def _lsgan_generator(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1) ** 2).mean(-1)


@dataclass(frozen=True)
class AdversarialLoss:
    """A pair of objectives over D's raw scores, plus how to read a score as D's output."""

    name: str
    description: str
    discriminator: Callable[[Tensor, Tensor], Tensor]
    generator: Callable[[Tensor], Tensor]
    probability: Callable[[Tensor], Tensor]
    """Maps raw scores to what is logged as ``d_real``/``d_fake``: a probability for the BCE family,
    the raw score for LSGAN (whose targets are 1 and 0, so it reads the same way)."""


LOSSES: dict[str, AdversarialLoss] = {
    loss.name: loss
    for loss in (
        AdversarialLoss(
            "bce",
            "non-saturating GAN loss from logits (G maximises log D(G(z)))",
            _bce_discriminator,
            _non_saturating_generator,
            torch.sigmoid,
        ),
        AdversarialLoss(
            "minimax",
            "the original saturating objective (G minimises log(1 - D(G(z))))",
            _bce_discriminator,
            _minimax_generator,
            torch.sigmoid,
        ),
        AdversarialLoss(
            "lsgan",
            "least-squares GAN (report 002, eq. 9)",
            _lsgan_discriminator,
            _lsgan_generator,
            lambda score: score,
        ),
    )
}


INFO_CONTINUOUS_WEIGHT = 0.1
"""Weight of the continuous codes' Gaussian NLL in InfoGAN's loss (the paper's lambda for c2, c3)."""


def info_loss(logits: Tensor, mean: Tensor, var: Tensor, labels: Tensor, continuous: Tensor) -> Tensor:
    """InfoGAN's mutual-information term: CE(c1) + 0.1 x Gaussian NLL(c2, c3), as reports 000 §4 and 003 write it.

    Shapes (..., N, classes or codes) and labels (..., N): one term per leading index (a group's members)."""
    var = var + 1e-6
    nll = 0.5 * (torch.log(2 * torch.pi * var) + (continuous - mean) ** 2 / var)
    if labels.dim() == 1:
        cross_entropy = F.cross_entropy(logits, labels)  # a trial's own: its mean reduction, as it always was
    else:  # a group's: one mean per member (it differs from the solo mean's rounding by 1 ulp at most)
        each = F.cross_entropy(logits.flatten(0, -2), labels.flatten(), reduction="none")
        cross_entropy = each.view(labels.shape).mean(-1)
    return cross_entropy + INFO_CONTINUOUS_WEIGHT * nll.sum(-1).mean(-1)
