from __future__ import annotations

import pytest
import torch

from gansweep.models import MODELS, InfoDiscriminator


@pytest.mark.parametrize("name", list(MODELS))
def test_generator_and_discriminator_shapes(name: str) -> None:
    spec = MODELS[name]
    latent_dim = spec.defaults["latent_dim"]
    generator, discriminator = spec.build(latent_dim, 16)
    latent = spec.sample_latent(6, latent_dim, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert latent.z.shape == (6, spec.input_dim(latent_dim))
    images = generator(latent.z, latent.labels)
    assert images.shape == (6, 1, spec.image_size, spec.image_size)
    low, high = (-1, 1) if spec.output == "tanh" else (0, 1)
    assert low <= images.min() and images.max() <= high
    assert discriminator(images, latent.labels).shape == (6,)
    if isinstance(discriminator, InfoDiscriminator):
        scores, (logits, mean, var) = discriminator.with_q(images)
        assert scores.shape == (6,) and logits.shape == (6, 10) and mean.shape == var.shape == (6, 2)
        assert (var > 0).all()


def test_dcgan64_matches_the_notes_parameter_counts() -> None:
    # ../shared/notes/architectures.md: G ~15.2 M at latent 256, D ~11.0 M (width 128).
    generator, discriminator = MODELS["dcgan64"].build(256, 128)
    assert round(sum(p.numel() for p in generator.parameters()) / 1e6, 1) == 15.2
    assert round(sum(p.numel() for p in discriminator.parameters()) / 1e6, 1) == 11.0


def test_infogan28_takes_74_inputs() -> None:
    spec = MODELS["infogan28"]
    assert spec.input_dim(spec.defaults["latent_dim"]) == 74


def test_conditional_latent_keeps_requested_labels() -> None:
    labels = torch.arange(10)
    latent = MODELS["infogan28"].sample_latent(10, 62, torch.Generator().manual_seed(0), torch.device("cpu"), labels)
    assert torch.equal(latent.z[:, 62:72].argmax(dim=1), labels)
    assert latent.continuous.abs().max() <= 1
