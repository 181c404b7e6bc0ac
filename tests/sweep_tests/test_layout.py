"""`--workers auto`'s rule: more workers only where the models' gain over the training left pays for them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gansweep.config import TrialPlan
from gansweep.data import TRAIN_SIZES
from gansweep.hparams import resolve_hyperparameters
from gansweep.models import MODELS
from gansweep.sweep._layout import GAINS, auto_workers, flops_per_image

N_TRAIN = TRAIN_SIZES["mnist-5k"]


def _plans(model: str, epochs: int, n: int, **given) -> list[TrialPlan]:
    hp = resolve_hyperparameters(model, {"epochs": epochs, **given}, N_TRAIN, "mnist-5k")
    return [TrialPlan(model, replace(hp, lr_g=1e-4 * (i + 1)), 0, "mnist-5k", None, i) for i in range(n)]


@pytest.mark.parametrize(
    ("model", "given", "gain"),
    [
        ("cs231n-mlp", {}, 0.19),
        ("mlp", {}, 0.19),
        ("cgan", {}, 0.19),
        ("dcgan28", {"width": 32}, 0.13),
        ("cs231n-dcgan", {}, 0.13),
        ("dcgan28", {"width": 128}, 0.03),
    ],
)
def test_each_measured_model_falls_in_its_measured_gain(model: str, given: dict, gain: float) -> None:
    hp = resolve_hyperparameters(model, given, N_TRAIN, "mnist-5k")
    assert next(g for below, g in GAINS if flops_per_image(model, hp) < below) == gain


@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_can_be_counted(model: str) -> None:
    """auto counts whatever a grid trains, InfoGAN's code inputs and 64x64 images included."""
    assert flops_per_image(model, resolve_hyperparameters(model, {}, N_TRAIN, "mnist-5k")) > 1e6


def test_cs231n_mlp_counts_its_linear_layers() -> None:
    """What the layers do: 2 x in x out FLOPs a layer forward, twice that backward, for G and D."""
    hp = resolve_hyperparameters("cs231n-mlp", {}, N_TRAIN, "mnist-5k")
    assert flops_per_image("cs231n-mlp", hp) == pytest.approx(13.1e6, rel=0.01)


def test_the_measured_sweeps_get_the_layout_that_was_faster_or_equal() -> None:
    """bench_workers on 2 cores (RESULTS.md): 2 workers lost at 5 epochs of cs231n-mlp, tied on the
    quickstart, won at 20 and 40 epochs."""
    assert auto_workers(_plans("cs231n-mlp", 5, 4), N_TRAIN, 2) == 1
    assert auto_workers(_plans("cs231n-mlp", 20, 4), N_TRAIN, 2) == 2
    assert auto_workers(_plans("dcgan28", 5, 4, width=32), N_TRAIN, 2) == 1
    assert auto_workers(_plans("cs231n-mlp", 40, 4), N_TRAIN, 2) == 2


def test_never_more_workers_than_cores_trials_or_the_work_pays_for() -> None:
    assert auto_workers(_plans("cs231n-mlp", 40, 4), N_TRAIN, 1) == 1
    assert auto_workers(_plans("cs231n-mlp", 400, 1), N_TRAIN, 8) == 1
    assert auto_workers(_plans("cs231n-mlp", 400, 3), N_TRAIN, 8) == 3
    assert 1 < auto_workers(_plans("cs231n-mlp", 20, 16), N_TRAIN, 16) < 16  # 8: what the work pays for


def test_the_largest_model_left_sets_the_gain() -> None:
    mlps = _plans("cs231n-mlp", 40, 4)
    assert auto_workers(mlps, N_TRAIN, 2) == 2
    assert auto_workers(mlps + _plans("dcgan28", 1, 1, width=128), N_TRAIN, 2) == 1
