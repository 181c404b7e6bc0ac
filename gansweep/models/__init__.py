"""The model zoo: every architecture in the seed reports, as data.

Example:
    >>> from gansweep.models import MODELS
    >>> spec = MODELS["dcgan28"]
    >>> generator, discriminator = spec.build(100, 32)
    >>> spec.image_size, spec.defaults["batch_size"]
    (28, 512)

Defaults are the reports' own (report 000's "default hyperparameter" rows, 000 §4's printed config,
002's assignment constants); where a report does not state a value, the DCGAN convention
(Adam, betas (0.5, 0.999)) is used and the entry's ``source`` says so.
"""

from __future__ import annotations

from gansweep.models._conv import build_cs231n_dcgan, build_dcgan28, build_dcgan64
from gansweep.models._fused import CHANNEL_DISCRIMINATORS, Slot, Slots, fuse
from gansweep.models._infogan import InfoDiscriminator, build_infogan28, build_infogan64
from gansweep.models._mlp import build_cgan, build_cs231n_mlp, build_mlp
from gansweep.models._spec import N_CLASSES, N_CONTINUOUS, Latent, ModelSpec

__all__ = [
    "MODELS",
    "ModelSpec",
    "Latent",
    "InfoDiscriminator",
    "N_CLASSES",
    "N_CONTINUOUS",
    "CHANNEL_DISCRIMINATORS",
    "Slot",
    "Slots",
    "fuse",
]

_DCGAN_BETAS = (0.5, 0.999)
_REPORT_000 = {"lr": 2e-4, "batch_size": 512, "latent_dim": 100, "betas": _DCGAN_BETAS, "epochs": 40}
_CS231N = {"lr": 1e-3, "batch_size": 128, "latent_dim": 96, "betas": _DCGAN_BETAS, "epochs": 10}

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "mlp",
            "vanilla MLP GAN, dropout in D",
            "report 000 §3 (debuggercafe vanilla GAN)",
            28,
            "tanh",
            build_mlp,
            _REPORT_000,
        ),
        ModelSpec(
            "dcgan28",
            "28x28 deconv GAN, channel width `width`",
            "report 000 §2",
            28,
            "tanh",
            build_dcgan28,
            {**_REPORT_000, "width": 128},
            extra_hyperparameters=frozenset({"width"}),
        ),
        ModelSpec(
            "dcgan64",
            "64x64 deconv GAN (digits resized to 64x64)",
            "report 000 §1 (mlvlab/data303)",
            64,
            "tanh",
            build_dcgan64,
            {**_REPORT_000, "width": 128},
            extra_hyperparameters=frozenset({"width"}),
        ),
        ModelSpec(
            "infogan28",
            "InfoGAN paper network: 62 noise + 10-way c1 + c2, c3",
            "reports 001/003; lr 1e-3 (G) / 2e-4 (D) as report 000 §4 quotes the paper, batch 128 not stated",
            28,
            "sigmoid",
            build_infogan28,
            {"lr_g": 1e-3, "lr_d": 2e-4, "batch_size": 128, "latent_dim": 62, "betas": _DCGAN_BETAS, "epochs": 100},
            noise="uniform",
            conditioning="info",
        ),
        ModelSpec(
            "infogan64",
            "64x64 InfoGAN: latent 50 + 12 codes",
            "report 000 §4 (printed config)",
            64,
            "tanh",
            build_infogan64,
            {"lr_g": 1e-3, "lr_d": 1e-5, "batch_size": 64, "latent_dim": 50, "betas": _DCGAN_BETAS, "epochs": 40},
            conditioning="info",
        ),
        ModelSpec(
            "cgan",
            "conditional MLP GAN: noise 100 + one-hot label; D sees image + label",
            "report 004 (50 epochs; lr, batch not stated)",
            28,
            "tanh",
            build_cgan,
            {"lr": 2e-4, "batch_size": 128, "latent_dim": 100, "betas": _DCGAN_BETAS, "epochs": 50},
            conditioning="label",
        ),
        ModelSpec(
            "cs231n-mlp",
            "CS231n vanilla GAN, uniform noise",
            "report 002",
            28,
            "tanh",
            build_cs231n_mlp,
            _CS231N,
            noise="uniform",
        ),
        ModelSpec(
            "cs231n-dcgan",
            "CS231n DCGAN: InfoGAN-appendix G, conv+maxpool D",
            "report 002",
            28,
            "tanh",
            build_cs231n_dcgan,
            _CS231N,
            noise="uniform",
        ),
    )
}
