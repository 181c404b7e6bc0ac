"""Flags and the verdict: where D-loss collapse, mode collapse, divergence, instability and low quality
are decided.

Inputs are a trial's per-epoch records (``epoch``, ``d_loss``, ``g_loss``, optional ``d_real``,
``d_fake``) where evaluated epochs also carry the sample metrics of ``metrics.py``. A wrong "mode
collapse" is worse than none, so every rule below names its thresholds and why they sit where they do;
the numbers quoted were measured with the mnist-5k judge (``tests/diagnostics_tests``).

Example:
    >>> from gansweep.diagnostics.flags import diagnose
    >>> history = [{"epoch": e, "d_loss": 0.0 if e >= 4 else 1.0, "g_loss": 50.0 if e >= 4 else 1.0,
    ...             "d_fake": 0.0 if e >= 4 else 0.4} for e in range(1, 11)]
    >>> diagnose(history).verdict
    'D-loss collapse at epoch 4'
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

Record = dict[str, Any]
FLAG_NAMES = ("diverged", "d_collapse", "mode_collapse", "unstable", "low_quality")

D_COLLAPSE_FAKE = 0.05
"""D(G(z)) below 5 %: D rejects fakes with > 95 % confidence, so the non-saturating G loss is above
-log(0.05) = 3 and G is being told only that everything it makes is fake."""
D_COLLAPSE_LOSS = 0.1
"""Mean D loss over the window below 0.1 (sum of the real and fake BCE halves): D is right on both
halves with > ~95 % confidence. Report 000 §1's default run sits at 0.0000."""
D_COLLAPSE_EPOCHS = 3
"""Sustained: three consecutive epochs, so one lucky epoch of a healthy run never flags. In a shorter
trial the window must reach its last epoch and last at least two."""
G_HIGH = 3.0
"""'G loss high': the non-saturating loss at D(G(z)) = 0.05. Or rising over the window instead (for
LSGAN/minimax, whose G losses live on other scales)."""

MODES_COLLAPSED = 6
"""At most 6 of 10 digits covered (``metrics.FAIR_SHARE``): 4 or more classes lost at once is not judge
noise (a 97 %-accurate judge gives real digits 10/10; real sets with 8 classes score 8/10)."""
DIVERSITY_COLLAPSED = 0.4
"""Judge-feature diversity below 0.4 of real data. Measured: one image repeated with noise 0.02; real
digits of a single class 0.55; blurred or heavily noised real digits (still varied) 0.65-0.67. 0.4 sits
between samples that are near copies and samples that are merely poor."""
PIXEL_DIVERSITY_COLLAPSED = 0.2
"""For samples the judge cannot read (low confidence) its features say nothing about variety, so raw
pixels decide: identical blobs score ~0, uniform noise ~1.4, real digits 1."""
SPIKE_RATIO, SPIKE_MIN = 1.5, 1.0
"""A G-loss spike: an epoch's G loss 1.5x the median of the three before it and at least 1.0 above it,
while D loss was below ``SPIKE_D_LOW`` — the signature report 000 describes before mode collapse."""
SPIKE_D_LOW = 0.5

LOW_CONFIDENCE = 0.5
"""Mean max-softmax of the judge below 0.5: garbage. Measured: real digits 0.98-0.99, blurred or noised
real digits 0.96, uniform noise 0.10 (the judge is trained towards uniform output on noise)."""
FID_HIGH = 500.0
"""fid_mnist above 500: far from the data. Measured: real vs held-out 16-63 (250-1000 samples); blurred
or noised real digits 284-299; uniform noise ~2,000; a single digit class ~2,200."""

UNSTABLE_WINDOW = 3
UNSTABLE_RATIO, UNSTABLE_MIN_STD = 4.0, 0.5
"""Unstable: after a 3-epoch warm-up, a 3-epoch window whose G-loss standard deviation is 4x the
trial's median window and at least 0.5 — large oscillation after the losses had settled
(report 000: 'suddenly unstable at 17-27 epochs'). Needs 8 epochs to tell settled from not."""
UNSTABLE_MIN_EPOCHS = 8


@dataclass(frozen=True)
class Flag:
    name: str
    epoch: int | None
    evidence: str
    phrase: str = field(default="", compare=False)
    """The verdict's wording for this flag."""


@dataclass
class Diagnosis:
    flags: list[Flag]
    verdict: str
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        flags = [{k: v for k, v in asdict(f).items() if k != "phrase"} for f in self.flags]
        return {"flags": flags, "verdict": self.verdict, "metrics": self.metrics}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def diverged(epochs: list[Record]) -> Flag | None:
    for r in epochs:
        if not (_finite(r["d_loss"]) and _finite(r["g_loss"])):
            return Flag("diverged", int(r["epoch"]), f"non-finite loss in epoch {r['epoch']} "
                        f"(D {r['d_loss']}, G {r['g_loss']})", f"diverged at epoch {r['epoch']}")  # fmt: skip
    return None


def d_collapse(epochs: list[Record]) -> Flag | None:
    """D wins and G stops learning: D(G(z)) < 5 % and D loss < 0.1 sustained, G loss high or rising."""
    if not epochs or "d_fake" not in epochs[0]:
        return None
    runs: list[list[Record]] = [[]]
    for r in epochs:
        runs[-1].append(r) if _finite(r["d_fake"]) and r["d_fake"] < D_COLLAPSE_FAKE else runs.append([])
    for window in runs:
        reaches_end = bool(window) and window[-1] is epochs[-1]
        if len(window) < D_COLLAPSE_EPOCHS and not (reaches_end and len(window) >= 2):
            continue
        d_mean = statistics.fmean(r["d_loss"] for r in window)
        g_mean = statistics.fmean(r["g_loss"] for r in window)
        rising = window[-1]["g_loss"] > window[0]["g_loss"]
        if d_mean < D_COLLAPSE_LOSS and (g_mean >= G_HIGH or rising):
            start, end = int(window[0]["epoch"]), int(window[-1]["epoch"])
            return Flag("d_collapse", start, f"epochs {start}-{end}: D(G(z)) < {D_COLLAPSE_FAKE}, mean D loss "
                        f"{d_mean:.3g}, mean G loss {g_mean:.3g}", f"D-loss collapse at epoch {start}")  # fmt: skip
    return None


def _is_collapsed(r: Record) -> bool:
    if r["confidence"] < LOW_CONFIDENCE:
        return r["pixel_diversity"] < PIXEL_DIVERSITY_COLLAPSED
    return r["modes_covered"] <= MODES_COLLAPSED or r["diversity"] < DIVERSITY_COLLAPSED


def _spike(epochs: list[Record], after: int, until: int) -> int | None:
    """The first G-loss spike (with D loss low) in epochs (after, until]."""
    for i, r in enumerate(epochs):
        if not after < r["epoch"] <= until or i < 3:
            continue
        before = statistics.median(e["g_loss"] for e in epochs[i - 3 : i])
        if r["g_loss"] > SPIKE_RATIO * before and r["g_loss"] - before >= SPIKE_MIN and epochs[i - 1]["d_loss"] < SPIKE_D_LOW:
            return int(r["epoch"])
    return None


def mode_collapse(epochs: list[Record]) -> Flag | None:
    """Decided from samples only: few digits, or near-copies. Dated by the last evaluation before which
    samples were healthy, moved back to a G-loss spike in between when there is one."""
    evals = [r for r in epochs if "modes_covered" in r]
    if not evals or not _is_collapsed(evals[-1]):
        return None
    first = len(evals) - 1
    while first > 0 and _is_collapsed(evals[first - 1]):
        first -= 1
    onset = int(evals[first]["epoch"])
    healthy_until = int(evals[first - 1]["epoch"]) if first > 0 else 0
    spike = _spike(epochs, healthy_until, onset)
    last = evals[-1]
    evidence = (f"{last['modes_covered']}/10 digits covered, diversity {last['diversity']:.2f} "
                f"(pixels {last['pixel_diversity']:.2f}), confidence {last['confidence']:.2f} at epoch {last['epoch']}")  # fmt: skip
    if spike is not None:
        evidence += f"; G-loss spike at epoch {spike} while D loss was low"
        onset = spike
    what = "near-identical samples" if last["confidence"] < LOW_CONFIDENCE else f"{last['modes_covered']}/10 digits"
    return Flag("mode_collapse", onset, evidence, f"mode collapse from epoch {onset} ({what})")


def unstable(epochs: list[Record], before: int | None) -> Flag | None:
    """Large G-loss oscillation after the losses had settled (windows starting before ``before``)."""
    g = [r["g_loss"] for r in epochs]
    if len(g) < UNSTABLE_MIN_EPOCHS or not all(_finite(x) for x in g):
        return None
    spreads = [statistics.pstdev(g[i : i + UNSTABLE_WINDOW]) for i in range(len(g) - UNSTABLE_WINDOW + 1)]
    typical = statistics.median(spreads[UNSTABLE_WINDOW:])
    limit = max(UNSTABLE_RATIO * typical, UNSTABLE_MIN_STD)
    hot = [i for i, s in enumerate(spreads) if i >= UNSTABLE_WINDOW and s > limit
           and (before is None or epochs[i]["epoch"] < before - UNSTABLE_WINDOW + 1)]  # fmt: skip
    if not hot:
        return None
    start = int(epochs[hot[0]]["epoch"])
    end = start
    for i in hot[1:]:
        if int(epochs[i]["epoch"]) > end + 1:
            break
        end = int(epochs[i]["epoch"])
    end += UNSTABLE_WINDOW - 1
    worst = max(spreads[i] for i in hot)
    return Flag("unstable", start, f"G-loss std {worst:.2f} in epochs {start}-{end} vs {typical:.2f} typical",
                f"unstable at epochs {start}-{end}")


def low_quality(epochs: list[Record]) -> Flag | None:
    evals = [r for r in epochs if "fid_mnist" in r]
    if not evals:
        return None
    last = evals[-1]
    if last["confidence"] < LOW_CONFIDENCE or last["fid_mnist"] > FID_HIGH:
        return Flag("low_quality", int(last["epoch"]), f"fid_mnist {last['fid_mnist']:.0f}, confidence "
                    f"{last['confidence']:.2f} at epoch {last['epoch']}", f"low quality (fid_mnist {last['fid_mnist']:.0f})")  # fmt: skip
    return None


def diagnose(epochs: list[Record]) -> Diagnosis:
    """All flags of a trial, its one-line verdict and its last evaluated metrics."""
    from gansweep.diagnostics.metrics import METRICS

    flags: list[Flag] = [f for f in (diverged(epochs), d_collapse(epochs), mode_collapse(epochs)) if f]
    collapse = next((f.epoch for f in flags if f.name == "d_collapse"), None)
    flags += [f for f in (unstable(epochs, collapse),) if f]
    if not any(f.name in ("d_collapse", "mode_collapse") for f in flags):
        flags += [f for f in (low_quality(epochs),) if f]
    evals = [r for r in epochs if "fid_mnist" in r]
    metrics = {k: evals[-1][k] for k in METRICS if k in evals[-1]} if evals else {}
    verdict = "; ".join(f.phrase for f in flags) or "good"
    return Diagnosis(flags, verdict, metrics)
