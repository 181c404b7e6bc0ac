from __future__ import annotations

import math
import multiprocessing as mp
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gansweep.data import Digits, load_dataset
from gansweep.diagnostics import judge as judge_module
from gansweep.diagnostics import load_judge, sample_metrics
from gansweep.diagnostics.judge import JUDGE_VERSION, fingerprint, read_judge, shipped
from gansweep.diagnostics.metrics import Reference, distinct_images, frechet_distance
from gansweep.errors import GansweepError


def test_judge_accuracy_on_heldout_mnist_5k(judge, digits) -> None:
    _, probs = judge(digits.heldout_images)
    accuracy = (probs.argmax(dim=1) == digits.heldout_labels).float().mean().item()
    assert accuracy >= 0.97 and accuracy == pytest.approx(judge.accuracy)


def test_the_shipped_judge_is_small_and_is_the_one_its_file_names(judge) -> None:
    path = shipped("mnist-5k")
    saved = torch.load(path, weights_only=True)
    assert judge.source == "shipped" and path.stat().st_size <= 1_000_000
    assert judge.sha256 == saved["sha256"] == fingerprint(saved["net"]) and saved["version"] == JUDGE_VERSION
    assert judge.name == f"mnist-5k/v{JUDGE_VERSION}/{judge.sha256[:12]}"
    assert saved["made"]["script"] == "scripts/make_judges.py" and judge.accuracy == saved["accuracy"]


def test_a_judge_file_whose_weights_changed_is_refused(tmp_path: Path) -> None:
    saved = torch.load(shipped("mnist-5k"), weights_only=True)
    saved["net"]["head.1.bias"] += 1
    torch.save(saved, tmp_path / "judge.pt")
    with pytest.raises(GansweepError, match="not a version 4 judge with the weights it names"):
        read_judge(tmp_path / "judge.pt", "cached")


def _tiny(name: str = "tiny") -> Digits:
    """200 real digits under a name no judge ships for: its judge is trained on first use."""
    digits = load_dataset("mnist-5k")
    return Digits(name, digits.train_images[::20][:200], digits.train_labels[::20][:200], *_heldout(digits))


def _heldout(digits: Digits) -> tuple[torch.Tensor, torch.Tensor]:
    return digits.heldout_images[:100], digits.heldout_labels[:100]


def _load_tiny(cache: str, results) -> None:
    """In a worker process: a judge for ``_tiny``, trained on 640 digits (not ``IMAGES``) to be quick."""
    os.environ["GANSWEEP_CACHE"] = cache
    judge_module.IMAGES = 640
    judge = load_judge(_tiny())
    results.put((judge.source, judge.sha256))


def test_a_judge_without_a_shipped_one_is_trained_once_by_two_processes_that_start_together(tmp_path: Path) -> None:
    context = mp.get_context("spawn")
    results = context.Queue()
    procs = [context.Process(target=_load_tiny, args=(str(tmp_path), results)) for _ in range(2)]
    for proc in procs:
        proc.start()
    got = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert sorted(source for source, _ in got) == ["cached", "trained"]  # the second waited, then read it
    assert len({sha for _, sha in got}) == 1 and (tmp_path / f"judge-tiny-v{JUDGE_VERSION}.pt").is_file()


def test_training_a_judge_says_what_it_does_and_about_how_long(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANSWEEP_CACHE", str(tmp_path))
    monkeypatch.setattr(judge_module, "IMAGES", 1600)  # 8 epochs of 200 digits: 32 steps, past SAY_AFTER
    heard: list[str] = []
    judge = load_judge(_tiny(), say=heard.append)
    (line,) = heard
    assert judge.source == "trained" and load_judge(_tiny()).source == "cached"
    assert re.fullmatch(
        rf"training the tiny judge on cpu: 8 epoch\(s\) of 200 digits, about \d+ s more "
        rf"\(once per machine; cached in {re.escape(str(tmp_path))}\)",
        line,
    )


@pytest.mark.slow
def test_make_judges_reproduces_the_shipped_accuracy_within_its_measured_tolerance() -> None:
    """A retrain on any CPU lands within ``make_judges.TOLERANCE`` (measured across seeds) of the shipped
    file's accuracy; the file itself is held to its fingerprint above."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_judges.py"
    done = subprocess.run([sys.executable, str(script), "mnist-5k", "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accuracy within 0.6 point" in done.stdout


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


def test_the_reference_a_shipped_judge_carries_is_the_one_its_held_out_digits_give(judge, digits) -> None:
    carried = Reference.of(judge, digits.heldout_images)
    fresh = read_judge(shipped("mnist-5k"), "shipped")
    fresh.references.clear()
    computed = Reference.of(fresh, digits.heldout_images)
    assert torch.allclose(carried.cov_sqrt, computed.cov_sqrt, rtol=1e-4, atol=1e-6)
    assert torch.allclose(carried.mean, computed.mean, rtol=1e-4, atol=1e-6)
    assert torch.equal(carried.histogram, computed.histogram)
    assert carried.spread == pytest.approx(computed.spread)
    assert carried.pixel_spread == pytest.approx(computed.pixel_spread)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("all ten", 1000, 1000), ("repeated", 1, 1), ("one class", 1000, 1000), ("blurred", 1000, 1000)],
)
def test_distinct_counts_the_images_samples_are_drawn_from(judge, digits, sample_sets, name, low, high) -> None:
    """Real digits (even of one class, or blurred) are no near-copies of each other (the count stops at
    DISTINCT_MOST); one image with noise is one."""
    assert low <= sample_metrics(judge, sample_sets[name], digits.heldout_images)["distinct"] <= high


@pytest.mark.parametrize(("images", "times"), [(10, 100), (20, 50), (50, 20)])
def test_distinct_of_digits_drawn_again_and_again_is_their_number(judge, digits, images: int, times: int) -> None:
    """Held-out digits repeated with pixel noise (sd 8/255), shuffled: however well they cover the classes."""
    g = torch.Generator().manual_seed(images)
    chosen = digits.heldout_images[torch.randperm(500, generator=g)[:images]].float().repeat(times, 1, 1, 1)
    noisy = (chosen + torch.randn(chosen.shape, generator=g) * 8).clamp(0, 255).to(torch.uint8)
    assert sample_metrics(judge, noisy, digits.heldout_images)["distinct"] == pytest.approx(images, rel=0.05)


@pytest.mark.parametrize(("groups", "sizes"), [(8, [4] * 8), (30, [35] + [1] * 29), (1, [64])])
def test_distinct_images_inverts_the_birthday_count(groups: int, sizes: list[int]) -> None:
    """D groups of near-copies among N samples give the S with S (1 - e^(-N/S)) = D (8 groups of 4: 8.16,
    as 8 images would show 7.85 groups among 32 draws)."""
    features = torch.eye(groups).repeat_interleave(torch.tensor(sizes), dim=0)
    support = distinct_images(features, 0.5)
    assert support * -math.expm1(-len(features) / support) == pytest.approx(groups, rel=1e-6)


def test_distinct_images_without_a_near_copy_is_n_squared() -> None:
    assert distinct_images(torch.eye(5), 0.5) == 25


def test_class_diversity_of_one_digit_per_class_is_near_zero(judge, digits) -> None:
    """A collapse inside every digit: one held-out digit of each class, repeated with noise."""
    labels = digits.heldout_labels
    one = torch.stack([digits.heldout_images[labels == c][0] for c in range(10)]).float().repeat(26, 1, 1, 1)
    noisy = (one + torch.randn(one.shape, generator=torch.Generator().manual_seed(0)) * 8).clamp(0, 255)
    metrics = sample_metrics(judge, noisy.to(torch.uint8), digits.heldout_images)
    assert metrics["class_diversity"] < 0.15 and metrics["modes_covered"] >= 9
    assert sample_metrics(judge, digits.heldout_images[::2], digits.heldout_images)["class_diversity"] > 0.9
