from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gansweep.diagnostics import load_judge, sample_metrics
from gansweep.diagnostics.judge import JUDGE_VERSION, cache_dir
from gansweep.diagnostics.metrics import frechet_distance


def test_judge_accuracy_on_heldout_mnist_5k(judge, digits) -> None:
    _, probs = judge(digits.heldout_images)
    accuracy = (probs.argmax(dim=1) == digits.heldout_labels).float().mean().item()
    assert accuracy >= 0.97 and accuracy == pytest.approx(judge.accuracy)


def test_judge_is_cached_on_disk(judge, digits, tmp_path: Path, monkeypatch) -> None:  # judge: the cache is filled
    # Training is deterministic, so a retrained judge would equal the cached one: plant a mark in the
    # cached file instead, and find it in the judge that is loaded.
    cached = torch.load(cache_dir() / f"judge-{digits.name}-v{JUDGE_VERSION}.pt", weights_only=True)
    cached["accuracy"], cached["net"]["head.1.bias"] = 0.5, torch.arange(10.0)
    torch.save(cached, tmp_path / f"judge-{digits.name}-v{JUDGE_VERSION}.pt")
    monkeypatch.setenv("GANSWEEP_CACHE", str(tmp_path))
    loaded = load_judge(digits)
    assert loaded.accuracy == 0.5 and torch.equal(loaded.net.head[1].bias, torch.arange(10.0))


def test_judge_is_unsure_of_noise_and_sure_of_digits(judge, sample_sets) -> None:
    assert sample_metrics(judge, sample_sets["uniform noise"], sample_sets["all ten"])["confidence"] < 0.2
    assert sample_metrics(judge, sample_sets["all ten"], sample_sets["all ten"])["confidence"] > 0.95


def test_metrics_of_real_digits_against_heldout(judge, digits, sample_sets) -> None:
    m = sample_metrics(judge, sample_sets["all ten"], digits.heldout_images)
    assert m["modes_covered"] == 10 and m["class_kl"] < 0.02 and m["mnist_score"] > 9
    assert 0.9 < m["diversity"] < 1.1 and 0.9 < m["pixel_diversity"] < 1.1
    assert m["fid_mnist"] < 100


@pytest.mark.parametrize(("name", "modes"), [("one class", 1), ("three classes", 3), ("eight classes", 8)])
def test_modes_covered_counts_the_classes_present(judge, digits, sample_sets, name: str, modes: int) -> None:
    assert sample_metrics(judge, sample_sets[name], digits.heldout_images)["modes_covered"] == modes


def test_frechet_distance_of_identical_gaussians_is_zero_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 4))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(a, a + 3) == pytest.approx(4 * 9, rel=1e-6)
