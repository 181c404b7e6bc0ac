from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from gansweep.cli import main
from gansweep.hparams import resolve_hyperparameters
from gansweep.models import MODELS, InfoDiscriminator

README = Path(__file__).resolve().parent.parent / "README.md"


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
    assert low <= images.min() and images.max() <= high and (images.min() < 0) == (spec.output == "tanh")
    assert discriminator(images, latent.labels).shape == (6,)
    if isinstance(discriminator, InfoDiscriminator):
        scores, (logits, mean, var) = discriminator.with_q(images)
        assert scores.shape == (6,) and logits.shape == (6, 10) and mean.shape == var.shape == (6, 2)


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


def _zoo_table() -> dict[str, tuple[int, str]]:
    """README "The model zoo": model -> (image size, defaults)."""
    table = README.read_text().split("## The model zoo", 1)[1].split("\n\n", 2)[1]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return {row[0].strip("`"): (int(row[1]), row[3]) for row in rows}


ZOO = _zoo_table()


def test_the_readme_zoo_table_lists_every_model(capsys) -> None:
    assert main(["list", "models", "--json"]) == 0
    listed = {row["name"]: row["image_size"] for row in json.loads(capsys.readouterr().out)}
    assert listed == {name: image for name, (image, _) in ZOO.items()}


@pytest.mark.parametrize(("name", "defaults"), [(name, defaults) for name, (_, defaults) in ZOO.items()], ids=list(ZOO))
def test_the_readme_zoo_defaults_are_what_a_trial_gets(name: str, defaults: str) -> None:
    hp, spec = resolve_hyperparameters(name, {}), MODELS[name]
    stated = {k: float(v) for k, v in re.findall(r"(lr_g|lr_d|lr|batch|latent|noise|width) ([\d.e-]+)", defaults)}
    resolved = {
        "lr_g": hp.lr_g,
        "lr_d": hp.lr_d,
        "batch": hp.batch_size,
        "latent": hp.latent_dim,
        "noise": hp.latent_dim,
        "width": hp.width,
    }
    if "lr" in stated:  # one lr for both
        stated["lr_g"] = stated["lr_d"] = stated.pop("lr")
    assert len(stated) >= 3 and stated == {k: resolved[k] for k in stated}
    epochs, codes = re.search(r"(\d+) epochs", defaults), re.search(r"\+ (\d+) codes", defaults)
    assert epochs is None or hp.epochs == int(epochs[1])
    assert spec.input_dim(hp.latent_dim) == hp.latent_dim + (int(codes[1]) if codes else 0)
    assert spec.noise == ("uniform" if "uniform" in defaults else "normal")
    assert hp.betas == (0.5, 0.999)  # "All use Adam with betas (0.5, 0.999)"
