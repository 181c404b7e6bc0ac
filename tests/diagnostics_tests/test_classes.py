"""Issue 30's five classes of wrong verdict, each on real training runs and on crafted cases, with real
digits as the controls that must not raise a false alarm: the table README's Diagnosis section shows.

A crafted case is a 40-epoch history (calm losses unless the class is about them) and samples judged at
the epochs it names, built from mnist-5k's held-out digits or from noise; a real case is a check of
``real_runs/`` (its verdict at that epoch). A case is right when the verdict's outcome and lasting flags
are the ones it expects (and, for a dated collapse, its onset).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from gansweep.diagnostics import diagnose, sample_metrics
from gansweep.diagnostics.metrics import Reference

CALM = {"d_loss": 1.2, "g_loss": 1.0, "d_real": 0.6, "d_fake": 0.4}
CLASSES = {
    "few distinct": "a few distinct images that still cover the classes",
    "unreadable copies": '"improving" read off unreadable near-copies',
    "trend": "a trend read as instability",
    "unreadable late": "unreadable samples late in a run",
    "regime": "a one-evaluation collapse after a loss event",
}


@dataclass(frozen=True)
class Case:
    kind: str
    """Which of ``CLASSES``."""
    name: str
    source: str
    """crafted, real (a real run's check) or digits (real digits: a control)."""
    lasting: tuple[str, ...]
    outcome: str
    onset: int | None = None
    """The mode collapse's onset, where the case dates one."""


@dataclass(frozen=True)
class Crafted(Case):
    make: Callable = lambda digits, rng: None
    """(digits, rng) -> (history, {epoch: uint8 samples})."""


def calm(epochs: int = 40, **columns: list[float]) -> list[dict]:
    return [{"epoch": e, **CALM, **{k: v[e - 1] for k, v in columns.items()}} for e in range(1, epochs + 1)]


def uint8(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.clip(images, 0, 255).round().astype(np.uint8))


def drawn_again(digits, rng, per_class: int | None, images: int, noise: float, shift: int = 0) -> torch.Tensor:
    """1,000 samples drawn from a few held-out digits (``per_class`` of every class, or ``images`` at
    random), each with pixel noise of sd ``noise`` (of 255) and shifts of up to ``shift`` pixels."""
    held, labels = digits.heldout_images.numpy().astype(float), digits.heldout_labels.numpy()
    if per_class:
        chosen = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])
    else:
        chosen = rng.choice(len(held), images, replace=False)
    samples = held[chosen[rng.integers(0, len(chosen), 1000)]]
    moves = rng.integers(-shift, shift + 1, (1000, 2))
    samples = np.stack([np.roll(s, tuple(m), axis=(-2, -1)) for s, m in zip(samples, moves)])
    return uint8(samples + rng.normal(0, noise, samples.shape))


def real_digits(digits, rng, count: int) -> torch.Tensor:
    return digits.train_images[torch.from_numpy(rng.choice(len(digits.train_images), count, replace=False))]


def smooth(rng, count: int, size: int) -> torch.Tensor:
    """Noise averaged over ``size`` x ``size`` squares: smooth blobs the judge cannot read."""
    noise = torch.from_numpy(rng.normal(0, 1, (count, 1, 28, 28))).float()
    blobs = torch.nn.functional.avg_pool2d(noise, size, 1, size // 2)
    return uint8((np.tanh(1.5 * (blobs / blobs.std()).numpy()) + 1) * 127.5)


def one_look(samples: Callable, epochs: int = 40, **columns) -> Callable:
    return lambda digits, rng: (calm(epochs, **columns), {epochs: samples(digits, rng)})


def copies_getting_darker(digits, rng) -> tuple[list[dict], dict[int, torch.Tensor]]:
    """As the quickstart's lr 2e-4 batch 256 trial: one noise texture in every cell, darker each epoch,
    while D wins (D(G(z)) 0.44 -> 0.03)."""
    texture = rng.uniform(40, 140, (1, 1, 28, 28))
    samples = {e: uint8(texture * (1 - 0.12 * e) + rng.normal(0, 6, (256, 1, 28, 28))) for e in range(1, 6)}
    history = calm(5, d_fake=[0.44, 0.28, 0.13, 0.06, 0.03], d_loss=[0.84, 0.53, 0.26, 0.13, 0.07])
    return history, samples


def falling(shape: Callable[[int], float]) -> Callable:
    """Healthy digits at epochs 10, 20, 30, 40 and a G loss that falls steeply at first, then stays flat."""
    return lambda digits, rng: (
        calm(40, g_loss=[shape(e) + rng.normal(0, 0.03) for e in range(1, 41)]),
        {e: real_digits(digits, rng, 256) for e in (10, 20, 30, 40)},
    )


def stepped(at: int, classes: tuple[int, ...], d_to: float = 0.35, g_to: float = 3.2) -> Callable:
    """D loss drops and G loss jumps at epoch ``at`` (noisy, as logged); held-out digits of ``classes`` at 40."""

    def make(digits, rng):
        d = [(1.2 if e < at else d_to) + rng.normal(0, 0.05) for e in range(1, 41)]
        g = [(1.0 if e < at else g_to) + rng.normal(0, 0.2) for e in range(1, 41)]
        chosen = np.isin(digits.heldout_labels.numpy(), classes)
        return calm(40, d_loss=d, g_loss=g), {40: digits.heldout_images[torch.from_numpy(chosen)]}

    return make


CRAFTED = [
    Crafted(
        "few distinct",
        "10 digits, one per class, 100 times each",
        "crafted",
        ("mode_collapse",),
        "bad",
        make=one_look(lambda d, r: drawn_again(d, r, 1, 0, 0.0)),
    ),
    Crafted(
        "few distinct",
        "20 digits, 50 times each, a little noise",
        "crafted",
        ("mode_collapse",),
        "bad",
        make=one_look(lambda d, r: drawn_again(d, r, 2, 0, 8.0)),
    ),
    Crafted(
        "few distinct",
        "40 digits with noise of sd 24",
        "crafted",
        ("mode_collapse",),
        "bad",
        make=one_look(lambda d, r: drawn_again(d, r, 4, 0, 24.0)),
    ),
    Crafted(
        "few distinct",
        "5 digits at random, 200 times each",
        "crafted",
        ("mode_collapse",),
        "bad",
        make=one_look(lambda d, r: drawn_again(d, r, None, 5, 8.0)),
    ),
    Crafted(
        "few distinct",
        "10 digits shifted by up to a pixel",
        "crafted",
        ("mode_collapse",),
        "bad",
        make=one_look(lambda d, r: drawn_again(d, r, 1, 0, 8.0, shift=1)),
    ),
    Crafted(
        "few distinct",
        "healthy at 10, then 20 digits again and again at 20 and 21",
        "crafted",
        ("mode_collapse",),
        "bad",
        onset=20,
        make=lambda d, r: (
            calm(21),
            {10: real_digits(d, r, 256), 20: drawn_again(d, r, 2, 0, 8.0), 21: drawn_again(d, r, 2, 0, 8.0)},
        ),
    ),
    Crafted(
        "few distinct", "256 real digits", "digits", (), "good", make=one_look(lambda d, r: real_digits(d, r, 256))
    ),
    Crafted(
        "few distinct", "1,000 real digits", "digits", (), "good", make=one_look(lambda d, r: real_digits(d, r, 1000))
    ),
    Crafted(
        "few distinct", "the 500 held-out digits", "digits", (), "good", make=one_look(lambda d, r: d.heldout_images)
    ),
    Crafted(
        "unreadable copies",
        "one noise texture, darker each epoch, D winning",
        "crafted",
        ("too_early",),
        "unclear",
        make=copies_getting_darker,
    ),
    Crafted(
        "unreadable copies",
        "copies of noise at epochs 1-5, then real digits at 6-8",
        "digits",
        (),
        "good",
        make=lambda d, r: (
            calm(8),
            {**copies_getting_darker(d, r)[1], **{e: real_digits(d, r, 256) for e in (6, 7, 8)}},
        ),
    ),
    Crafted(
        "trend",
        "G loss halving to 1 over five epochs",
        "crafted",
        (),
        "good",
        make=falling(lambda e: 1 + 4 * 0.5 ** (e - 1)),
    ),
    Crafted(
        "trend",
        "G loss falling in a straight line 5 -> 1, then flat",
        "crafted",
        (),
        "good",
        make=falling(lambda e: max(1.0, 5.0 - (e - 1))),
    ),
    Crafted(
        "trend",
        "G loss falling 6 -> 1.5 in three epochs, then flat",
        "crafted",
        (),
        "good",
        make=falling(lambda e: max(1.5, 6.0 - 1.5 * (e - 1))),
    ),
    Crafted(
        "trend",
        "a fall as steep, then an oscillation of +-1.5 from epoch 34",
        "digits",
        ("unstable",),
        "bad",
        make=falling(lambda e: 1 + 4 * 0.5 ** (e - 1) + (1.5 if e % 2 else -1.5) * (e >= 34)),
    ),
    Crafted(
        "unreadable late",
        "uniform noise at epoch 40",
        "crafted",
        ("low_quality",),
        "bad",
        make=one_look(lambda d, r: uint8(r.uniform(0, 255, (500, 1, 28, 28)))),
    ),
    Crafted(
        "unreadable late",
        "smooth blobs at epoch 40",
        "crafted",
        ("low_quality",),
        "bad",
        make=one_look(lambda d, r: smooth(r, 500, 9)),
    ),
    Crafted(
        "unreadable late",
        "small smooth blobs at epoch 25",
        "crafted",
        ("low_quality",),
        "bad",
        make=one_look(lambda d, r: smooth(r, 500, 5), epochs=25),
    ),
    Crafted(
        "unreadable late",
        "uniform noise at epoch 10",
        "crafted",
        ("too_early",),
        "unclear",
        make=one_look(lambda d, r: uint8(r.uniform(0, 255, (500, 1, 28, 28))), epochs=10),
    ),
    Crafted(
        "unreadable late",
        "real digits at epoch 40",
        "digits",
        (),
        "good",
        make=one_look(lambda d, r: real_digits(d, r, 256)),
    ),
    Crafted(
        "regime",
        "three classes after D drops and G jumps at 11",
        "crafted",
        ("mode_collapse",),
        "bad",
        onset=11,
        make=stepped(11, (2, 4, 9)),
    ),
    Crafted(
        "regime",
        "one class after a change at 25",
        "crafted",
        ("mode_collapse",),
        "bad",
        onset=25,
        make=stepped(25, (3,), d_to=0.5, g_to=2.6),
    ),
    Crafted(
        "regime",
        "two classes after a change at 6",
        "crafted",
        ("mode_collapse",),
        "bad",
        onset=6,
        make=stepped(6, (1, 7), d_to=0.2, g_to=4.0),
    ),
    Crafted(
        "regime",
        "three classes after calm losses: onset unknown",
        "crafted",
        ("mode_collapse",),
        "bad",
        onset=40,
        make=one_look(lambda d, r: d.heldout_images[torch.from_numpy(np.isin(d.heldout_labels.numpy(), (2, 4, 9)))]),
    ),
    Crafted("regime", "all ten classes after a change at 11", "digits", (), "good", make=stepped(11, tuple(range(10)))),
]
REAL = [
    Case("few distinct", "cgan_repeats@30", "real", ("under_trained",), "unclear"),  # 'good' before
    Case("few distinct", "healthy@8", "real", (), "good"),
    Case("few distinct", "final_healthy@40", "real", (), "good"),
    Case("few distinct", "final_speckled@40", "real", ("too_early",), "unclear"),
    Case("unreadable copies", "quickstart_slow@5", "real", ("too_early",), "unclear"),
    Case("unreadable copies", "under_trained@15", "real", ("under_trained",), "unclear"),  # legible: improving
    Case("trend", "healthy@8", "real", (), "good"),  # G loss 3.2 -> 1.5 in its first 8 epochs
    Case("trend", "final_healthy@40", "real", (), "good"),
    Case(
        "regime", "final_collapse@40", "real", ("d_collapse", "mode_collapse"), "bad", onset=26
    ),  # its D-loss collapse dates it
    Case("regime", "final_recovered@40", "real", ("mode_collapse",), "bad", onset=40),  # no clear change: onset unknown
]


def judged(case: Crafted, digits, judge, reference) -> list[dict]:
    history, samples = case.make(digits, np.random.default_rng(len(case.name)))
    for epoch, images in samples.items():
        history[epoch - 1].update(sample_metrics(judge, images, reference))
    return history


def right(case: Case, history: list[dict]) -> bool:
    diagnosis = diagnose(history)
    lasting = tuple(sorted(f.name for f in diagnosis.flags if f.end is None))
    onset = next((f.epoch for f in diagnosis.flags if f.name == "mode_collapse"), None)
    return (
        lasting == tuple(sorted(case.lasting))
        and diagnosis.outcome == case.outcome
        and (case.onset is None or onset == case.onset)
    )


@pytest.fixture(scope="module")
def results(judge, digits, histories) -> dict[Case, bool]:
    reference = Reference.of(judge, digits.heldout_images)
    out: dict[Case, bool] = {case: right(case, judged(case, digits, judge, reference)) for case in CRAFTED}
    for case in REAL:
        name, epochs = case.name.split("@")
        out[case] = right(case, histories[name][: int(epochs)])
    return out


@pytest.mark.parametrize("case", CRAFTED + REAL, ids=[f"{c.kind}: {c.name}" for c in CRAFTED + REAL])
def test_each_case_gets_the_verdict_its_samples_call_for(results, case: Case) -> None:
    assert results[case]


def test_the_table_of_classes_is_the_readme_s(results) -> None:
    rows = ["| class | real runs | crafted | real digits (controls) |", "|---|---|---|---|"]
    for kind, words in CLASSES.items():
        cells = []
        for source in ("real", "crafted", "digits"):
            cases = [c for c in results if c.kind == kind and c.source == source]
            cells.append(f"{sum(results[c] for c in cases)}/{len(cases)}" if cases else "—")
        rows.append(f"| {words} | " + " | ".join(cells) + " |")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "\n".join(rows) in readme, "\n".join(rows)
