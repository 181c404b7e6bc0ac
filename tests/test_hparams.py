from __future__ import annotations

import re
from pathlib import Path

import pytest

from gansweep.hparams import HyperparameterError, allowed_hyperparameters, resolve_hyperparameters
from gansweep.models import MODELS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_come_from_the_report() -> None:
    hp = resolve_hyperparameters("dcgan64", {})
    assert (hp.lr_g, hp.batch_size, hp.latent_dim, hp.width, hp.epochs) == (2e-4, 512, 100, 128, 40)
    info = resolve_hyperparameters("infogan64", {})
    assert (info.lr_g, info.lr_d, info.batch_size, info.latent_dim) == (1e-3, 1e-5, 64, 50)


def test_the_hyperparameters_every_model_takes_are_the_readmes() -> None:
    sentence = re.search(r"Hyperparameters every model takes: (.*?); `width` only for", README.read_text(), re.S)[1]
    common = re.findall(r"`(\w+)`", sentence)
    for name in MODELS:
        assert set(allowed_hyperparameters(name)) == {*common, *(["width"] if name in ("dcgan28", "dcgan64") else [])}
        hp = resolve_hyperparameters(name, {})
        assert (hp.loss, hp.d_steps) == ("bce", 1)  # bce "(non-saturating, default)"


def test_lr_sets_both_and_lr_g_lr_d_override() -> None:
    hp = resolve_hyperparameters("infogan64", {"lr": 1e-4, "lr_d": 3e-3})
    assert (hp.lr_g, hp.lr_d) == (1e-4, 3e-3)


def test_yaml_style_strings_are_numbers() -> None:
    # PyYAML reads "2e-4" (no dot) as a string; it must still be the number a user meant.
    assert resolve_hyperparameters("mlp", {"lr": "2e-4"}).lr_g == 2e-4


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"lr": 0}, "lr must be > 0"),
        ({"lr": -1e-4}, "lr must be > 0"),
        ({"lr_g": 0}, "lr_g must be > 0"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"batch_size": 4501}, "batch_size must be at most 4500 (the training split of mnist-5k)"),
        ({"latent_dim": 0}, "latent_dim must be >= 1"),
        ({"loss": "wgan"}, "loss must be one of: bce, minimax, lsgan; got 'wgan'"),
        ({"width": 64}, "model 'mlp' does not take hyperparameter 'width'"),
        ({"dropout": 0.5}, "model 'mlp' does not take hyperparameter 'dropout'"),
        ({"betas": [0.5]}, "betas must be two numbers"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"d_steps": 0}, "d_steps must be >= 1"),
        ({"lr": "fast"}, "lr must be a number, got 'fast'"),
    ],
)
def test_invalid_hyperparameters_are_named(given: dict, message: str) -> None:
    with pytest.raises(HyperparameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_hyperparameters("mlp", given, n_train=4500, dataset="mnist-5k")


def test_unknown_model() -> None:
    with pytest.raises(HyperparameterError, match="unknown model 'gan9'; choose one of: mlp"):
        resolve_hyperparameters("gan9", {})
