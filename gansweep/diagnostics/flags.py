"""Flags and the verdict: where D-loss collapse, mode collapse, divergence, instability, low quality,
under-training and "too early to tell" are decided.

Inputs are a trial's per-epoch records (``epoch``, ``d_loss``, ``g_loss``, optional ``d_real``,
``d_fake``) where evaluated epochs also carry the sample metrics of ``metrics.py``. A wrong "mode
collapse" is worse than none, so every rule below names its thresholds and why they sit where they do;
the numbers quoted were measured with the shipped mnist-5k judge (``tests/diagnostics_tests``,
``benchmarks/metric_noise.py``) unless they say otherwise.

Each evaluation gets a state: its samples' ``quality`` (healthy, poor, collapsed) and a ``trend``
(improving, flat, degrading) over the last evaluations, decided against the metrics' own noise. Poor
samples still improving, and collapsed ones still getting more varied (``VARIETY``: severity before
trend), are ``under_trained``; a collapse is one that is stuck in its variety, that follows healthy
samples, that comes with a D-loss collapse, or, judged once, that is severe after ``ONE_LOOK_EPOCHS``. A flag whose episode
ended before the last epoch keeps its ``end`` and no longer makes the trial bad.

Example:
    >>> from gansweep.diagnostics.flags import diagnose
    >>> history = [{"epoch": e, "d_loss": 0.0 if e >= 4 else 1.0, "g_loss": 50.0 if e >= 4 else 1.0,
    ...             "d_fake": 0.0 if e >= 4 else 0.4} for e in range(1, 11)]
    >>> diagnose(history).verdict
    'D-loss collapse at epoch 4'
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from gansweep.diagnostics.metrics import METRICS, unreadable

Record = dict[str, Any]
FLAG_NAMES = ("diverged", "d_collapse", "mode_collapse", "unstable", "low_quality", "under_trained", "too_early")
BAD_FLAGS = ("diverged", "d_collapse", "mode_collapse", "unstable", "low_quality")
"""Flags that make a trial bad while they last; ``under_trained`` and ``too_early`` say "not yet known"."""

D_COLLAPSE_FAKE = 0.05
"""D(G(z)) below 5 %: D rejects fakes with > 95 % confidence, so the non-saturating G loss is above
-log(0.05) = 3 and G is being told only that everything it makes is fake."""
D_COLLAPSE_LOSS = 0.1
"""Median D loss over the window below 0.1 (sum of the real and fake BCE halves): D is right on both
halves with > ~95 % confidence. Report 000 §1's default run sits at 0.0000. The median, not the mean: the
window's first epoch can still carry the fall (mlp lr 5e-3: D loss 1.39 there, then <= 0.01 for 12
epochs, a mean of 0.14)."""
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
DISTINCT_COLLAPSED = 400
"""At most ~400 distinct images (``metrics.distinct_images``): a 10x10 grid drawn from 400 images repeats
~12 of its cells, a person sees the copies. Measured (shipped mnist-5k judge, 256 samples): real test
digits >= 4,000 in 40 draws (>= 12,800 at 1,000 samples), readable real runs 2,254-6,468 where any pair
was near; 10-50 real digits drawn over and over, with pixel noise up to sd 32/255, 10-62; the same with a
one-pixel shift (9 images per digit) 82-202. Read only where the judge can read the samples (its features
of garbage say nothing of how alike they are)."""
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
"""Unstable: after a 3-epoch warm-up, a 3-epoch window whose G-loss wobble (standard deviation about the
window's own straight line) is 4x the trial's median window and at least 0.5 — large oscillation after the
losses had settled (report 000: 'suddenly unstable at 17-27 epochs'). Needs 8 epochs to tell settled from
not. About its line, not its mean: a healthy G loss falling 5 -> 1 over its first five epochs had a plain
standard deviation of 0.6-0.8 in epochs 4-6 and read "unstable"; an alternation (+-a) wobbles as much
either way."""
UNSTABLE_MIN_EPOCHS = 8

TREND_METRICS = {"fid_mnist": -1, "diversity": 1, "modes_covered": 1, "pixel_diversity": 1, "distinct": 1}
"""The metrics a trend is read from, with the sign of "better". Pixel diversity is among them because
samples the judge cannot read pin the judge's own metrics (fid_mnist ~1314, diversity 0, 1 digit) while
their pixels still show a generator moving away from one blob. Records without ``distinct`` (written
before it) read as not measuring it."""
VARIETY = ("modes_covered", "diversity", "pixel_diversity", "distinct")
"""The collapse measures: how many digits, how varied in the judge's features and in pixels, how many
distinct images. Collapsed samples are stuck until one of these sets a new best (``Evaluation.variety``): a
generator that draws one digit better each epoch (fid_mnist falling) still draws one digit, while a cgan
(lr 2e-3) going from ~12 to ~172 distinct images at epochs 15-30 draws more of them. Severity before trend."""
NEAR_COPIES = 0.1
"""Judge diversity below 0.1 (of real digits'): near-copies. Measured: one image repeated with noise 0.02;
one blob in every cell 0.02-0.06 (mlp lr 2e-4 batch 512, cs231n-mlp lr 1e-3 batch 128 at epochs 5-13);
one class of real digits 0.55."""
FID_NOISE = (5.0, 0.015)
"""Spread (standard deviation) of fid_mnist between draws of 256 samples: ~5 + 1.5 % of its value.
Measured with ``benchmarks/metric_noise.py`` (30 draws of resampled real training digits against the
held-out ones), shipped judge: all digits 38.6 +- 5.7, blurred digits 162 +- 8.8, three classes 747 +- 11.3,
one class 1336 +- 19.2 (the judge trained per machine before it gave 36 +- 5.3, 149 +- 7.8, 681 +- 10.6-16.6
and 1244 +- 16.0)."""
DISTINCT_NOISE = 0.15
"""Spread of ``distinct`` as a share of its value: 30 draws of 256 samples from S real digits with pixel
noise gave sd 0 for S <= 20, 1.4 % at 50, 3.2 % at 100, 5.1 % at 200, 10.4 % at 400 and 14.8 % at 800
(``benchmarks/metric_noise.py``, its "again" pools: 1.0 %, 5.9 % and 13 % at 50, 200 and 800)."""
NOISE = {"diversity": 0.01, "modes_covered": 0.5, "pixel_diversity": 0.01}
"""Spread of the other trend metrics at 256 samples, same draws: diversity 0.005-0.011, pixel diversity
0.004-0.009; modes_covered did not move at all (10/10, 3/3 and 1/1 in every draw), so half a digit
stands for its rounding."""
TREND_Z = 2.0
"""A change is beyond noise when it exceeds 2 standard deviations of the difference of two evaluations
(2 * sqrt(2) * spread): ~5 % of equal pairs would pass it by chance."""
TREND_T = 2.0
"""... and, over 4 or more evaluations, when the least-squares slope is 2 standard errors from zero.
Generators wobble between epochs far more than draws do (fid_mnist +-80 from one epoch to the next in
real cs231n-mlp runs at ~900), so a trend has to stand out from the trial's own scatter too."""
STUCK_EPOCHS, STUCK_SHARE = 8, 1 / 3
"""Poor samples are stuck (low quality) once they have set no new best for 8 epochs and for a third of
the epochs trained (collapsed ones: ``COLLAPSE_EPOCHS``, in their variety) (learning slows as a run goes on, and so do its new bests).
Measured on real mnist-5k runs: ones that went on to learn went up to 5 epochs without a new best in
their first 20 and up to 7 later (cs231n-mlp lr 1e-3 at epochs 23-30, lr 2e-3 at 27-33, both improving
to 9-10 digits or still by epoch 40); ones that stayed collapsed went 10 to 29 (report 000's collapses
last 30 epochs). Shorter stalls are "too early to tell"."""
TREND_MIN, TREND_MAX = 3, 8
"""Trends are read over the last half of the evaluations, at least the last 3 (two, when only two
exist) and at most the last 8: the 15-epoch cs231n-mlp run improves by ~20 fid_mnist an epoch under
+-80 wobble, which 3 evaluations cannot show and 8 can; a longer window lags: an mlp (lr 2e-3, batch 64)
fell back into identical samples at epochs 27-29 while 15 evaluations still read "improving"."""


COLLAPSE_EPOCHS = 11
"""Collapsed samples are stuck (a mode collapse) once their variety (``VARIETY``) has set no new best for
11 epochs and for a third of the epochs trained. Measured on real mnist-5k runs evaluated every epoch
(``tests/diagnostics_tests/real_runs``): runs that went on to learn went up to 10 epochs without one
(cs231n-mlp lr 1e-3 batch 128: one speckled blob in every cell at epochs 3-13, digits of several kinds
from 15; 11 from epoch 27 or 29 on, under the third); runs whose grids stayed collapsed went 12 to 14
(mlp lr 2e-4 batch 512, report 000's default: one blob in every cell for 14 epochs; mlp lr 2e-3 batch 128:
one speckled stroke from epoch 6 to 18). Near-copies or <= 2 digits are no quicker to call: learning
runs drew them for as long (the blob above). Counted in epochs, whatever ``eval_every`` is."""
SEVERE_MODES = 2
"""At most 2 of 10 digits covered: one or two shapes in every cell (``_severe``)."""
SURE = 0.9
"""The judge's mean confidence at which few digits are few digits: real digits score 0.98-0.99, blurred
or noised ones 0.96-0.97, generated speckled digits 0.5-0.8 — and for those the judge's class count runs
low: a cs231n-mlp at epoch 38 drawing all ten digits, speckled, covered 6/10 at confidence 0.66."""
ONE_LOOK_EPOCHS = 20
"""Severe samples (``_severe``) at a run's only evaluation (a sweep whose ``eval_every`` is its epochs,
or ``diagnose`` with one .npy) are a mode collapse from epoch 20 on, of unknown onset unless the losses
date it (``REGIME_CLEAR``); before, too early to tell. Every generator starts from near-copies, and the
slowest real run measured drew them until epoch 14 (cs231n-mlp lr 1e-3 batch 128, mnist-5k); after that,
severe samples are what the grid shows: one or two shapes, or one class drawn clearly, in every cell.
Likewise samples the judge cannot read (``illegible``) from epoch 20 on are low quality, whatever their
trend: that run was illegible to epoch 9 (confidence 0.44) and legible from 12 (0.75), as was every
other real run that went on to learn."""
REGIME_CLEAR = 4.0
"""One clear change of regime in the losses: the epoch that splits the history into two spells whose mean
G loss rises, and whose mean D loss falls, by 4 standard deviations of the spells themselves (and G by at
least ``SPIKE_MIN``). A straight ramp splits at most 3.46 sd apart (sqrt 12), whatever its slope; real runs
without such an event 0.9-3.2, the two with one 10-12 (G) and 5-9.5 (D). It dates a collapse seen at a
run's only evaluation, when that evaluation follows it."""


@dataclass(frozen=True)
class Flag:
    name: str
    epoch: int | None
    evidence: str
    phrase: str = field(default="", compare=False)
    """The verdict's wording for this flag."""
    end: int | None = None
    """The first epoch after the episode ended (recovered); None while it lasts."""

    @property
    def wording(self) -> str:
        return self.phrase if self.end is None else f"{self.phrase} (recovered by epoch {self.end})"


@dataclass(frozen=True)
class Evaluation:
    """One evaluated epoch: how its samples look, and where they are heading."""

    epoch: int
    quality: str
    """healthy, poor (unreadable or far from the data) or collapsed (few digits, or near-copies)."""
    trend: str | None
    """improving, flat or degrading over the last evaluations; None for the first."""
    trends: dict[str, str] = field(default_factory=dict)
    """The trend of each of ``TREND_METRICS``."""
    record: bool = False
    """A new best: better than every earlier evaluation, beyond noise, on one of ``TREND_METRICS``."""
    variety: bool = False
    """A new best on one of ``VARIETY``'s measures: the samples themselves got more varied."""


@dataclass
class Diagnosis:
    flags: list[Flag]
    verdict: str
    metrics: dict[str, float]
    evaluations: list[Evaluation] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """bad (a bad flag that lasts to the end), unclear (under-trained or too early) or good."""
        lasting = {f.name for f in self.flags if f.end is None}
        return "bad" if lasting & set(BAD_FLAGS) else "unclear" if lasting else "good"

    def to_dict(self) -> dict[str, Any]:
        flags = [{k: v for k, v in asdict(f).items() if k != "phrase"} for f in self.flags]
        return {
            "flags": flags,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "metrics": self.metrics,
            "evaluations": [asdict(e) for e in self.evaluations],
        }


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def diverged(epochs: list[Record]) -> Flag | None:
    for r in epochs:
        if not (_finite(r["d_loss"]) and _finite(r["g_loss"])):
            return Flag(
                "diverged",
                int(r["epoch"]),
                f"non-finite loss in epoch {r['epoch']} (D {r['d_loss']}, G {r['g_loss']})",
                f"diverged at epoch {r['epoch']}",
            )
    return None


def d_collapse(epochs: list[Record], states: list[Evaluation]) -> Flag | None:
    """D wins and G stops learning: D(G(z)) < 5 % and D loss < 0.1 sustained, G loss high or rising,
    unless G is still learning: the samples judged last in that window are healthy, or improving with a
    new best among the last 3 evaluations. (With ``d_steps: 5`` a real dcgan28 kept D loss ~0.02 for 20
    epochs while its samples became readable digits of every class. Neither half alone is enough:
    samples climbing back from an earlier collapse read as improving while D has already won again, and
    the quickstart's lr 2e-4 trial set a new best in diversity, 0.04 -> 0.10, while its samples stayed
    near-identical and its trend flat.) The episode that lasts to the last epoch if there is one, else
    the first (recovered) one."""
    epochs = list(itertools.takewhile(lambda r: _finite(r["d_loss"]) and _finite(r["g_loss"]), epochs))  # to divergence
    runs: list[list[Record]] = [[]]
    for r in epochs:
        runs[-1].append(r) if _finite(r.get("d_fake")) and r["d_fake"] < D_COLLAPSE_FAKE else runs.append([])
    found = []
    for window in runs:
        reaches_end = bool(window) and window[-1] is epochs[-1]
        if len(window) < D_COLLAPSE_EPOCHS and not (reaches_end and len(window) >= 2):
            continue
        d_median = statistics.median(r["d_loss"] for r in window)
        g_mean = statistics.fmean(r["g_loss"] for r in window)
        rising = window[-1]["g_loss"] > window[0]["g_loss"]
        start, last = int(window[0]["epoch"]), int(window[-1]["epoch"])
        judged = [e for e in states if start <= e.epoch <= last]
        learning = bool(judged) and (
            judged[-1].quality == "healthy"
            or (judged[-1].trend == "improving" and any(e.record for e in judged[-TREND_MIN:]))
        )
        if d_median < D_COLLAPSE_LOSS and (g_mean >= G_HIGH or rising) and not learning:
            found.append(
                Flag(
                    "d_collapse",
                    start,
                    f"epochs {start}-{last}: D(G(z)) < {D_COLLAPSE_FAKE}, median D loss "
                    f"{d_median:.3g}, mean G loss {g_mean:.3g}",
                    f"D-loss collapse at epoch {start}",
                    None if reaches_end else last + 1,
                )
            )
    return next((f for f in found if f.end is None), found[0] if found else None)


def illegible(r: Record) -> bool:
    """Samples the judge cannot read as digits: its features are silent (``unreadable``) or it is unsure of
    them. Their judge metrics measure nothing: only their pixels say whether they are alike. (Records
    written before the judge's confidence was kept count as sure.)"""
    return unreadable(r) or r.get("confidence", 1.0) < LOW_CONFIDENCE


def _few_distinct(r: Record) -> bool:
    return not illegible(r) and r.get("distinct", math.inf) <= DISTINCT_COLLAPSED


def _quality(r: Record) -> str:
    if illegible(r):
        return "collapsed" if r["pixel_diversity"] < PIXEL_DIVERSITY_COLLAPSED else "poor"
    if r["modes_covered"] <= MODES_COLLAPSED or r["diversity"] < DIVERSITY_COLLAPSED or _few_distinct(r):
        return "collapsed"
    return "poor" if r["fid_mnist"] > FID_HIGH else "healthy"


def _noise(metric: str, values: list[float]) -> float:
    if metric == "fid_mnist":
        return FID_NOISE[0] + FID_NOISE[1] * statistics.fmean(values)
    if metric == "distinct":
        return DISTINCT_NOISE * statistics.fmean(values)
    return NOISE[metric]


def _measured(metric: str, r: Record) -> bool:
    """Only pixels measure samples the judge cannot read (``illegible``): their features are all zero, or
    the judge's class count of near-identical noise (4/10 at confidence 0.19 in the quickstart's lr 2e-4
    batch 256 trial) and its fid_mnist (the constant 1376) are no evidence of progress."""
    return metric in r and (metric == "pixel_diversity" or not illegible(r))


def _direction(metric: str, window: list[Record]) -> int:
    """+1 better, -1 worse, 0 within noise: the least-squares change of ``metric`` over ``window``."""
    window = [r for r in window if _measured(metric, r)]
    if len(window) < 2:
        return 0
    x = [float(r["epoch"]) for r in window]
    y = [float(r[metric]) for r in window]
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxx = sum((a - mx) ** 2 for a in x)
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx
    change = slope * (x[-1] - x[0])
    if abs(change) <= TREND_Z * math.sqrt(2) * _noise(metric, y):
        return 0
    if len(window) >= 4:
        residual = sum((b - my - slope * (a - mx)) ** 2 for a, b in zip(x, y)) / (len(window) - 2)
        if abs(slope) < TREND_T * math.sqrt(residual / sxx):
            return 0
    return int(math.copysign(1, change * TREND_METRICS[metric]))


def _records(evals: list[Record], metrics: dict[str, int], variety: bool = False) -> list[bool]:
    """Which evaluations set a new best: on one of ``metrics``, at least as good as every earlier one and
    better beyond noise than its value at that metric's last new best (or the first evaluation). A
    generator that improves by less than the noise each epoch still sets one every few epochs.

    Unreadable samples' diversity is skipped (``_measured``). With ``variety`` (the collapse measures) a
    new best must also hold at the next evaluation, where there is one. Three measures compared at every evaluation set chance records (~5 % each) that would
    end every stall: an mlp (lr 2e-4, batch 512) drew one blob in every cell for 14 epochs while its
    diversity went 0.032 -> 0.062 at epoch 8 and back to 0.047 at 9."""
    out = [False] * len(evals)
    for metric, better in metrics.items():
        values = [better * float(r[metric]) if _measured(metric, r) else None for r in evals]
        anchor = best = None
        for i, value in enumerate(values):
            if value is None:
                continue
            if anchor is None or best is None:
                anchor = best = value
                continue
            margin = TREND_Z * math.sqrt(2) * _noise(metric, [evals[i][metric]])
            after = next((v for v in values[i + 1 :] if v is not None), None) if variety else None
            if value >= best and value - anchor > margin and (after is None or after - anchor > margin):
                anchor, out[i] = value, True
            best = max(best, value)
    return out


def _evaluation(evals: list[Record], i: int, record: bool, variety: bool) -> Evaluation:
    """The state of ``evals[i]``, its trend read over the evaluations up to it."""
    r = evals[i]
    size = min(TREND_MAX, max(TREND_MIN, math.ceil((i + 1) / 2)))
    window = evals[max(0, i + 1 - size) : i + 1]
    if len(window) < 2:
        return Evaluation(int(r["epoch"]), _quality(r), None, record=record, variety=variety)
    directions = {m: _direction(m, window) for m in TREND_METRICS}
    words = {1: "improving", 0: "flat", -1: "degrading"}
    seen = set(directions.values())
    trend = "improving" if 1 in seen and -1 not in seen else "degrading" if -1 in seen and 1 not in seen else "flat"
    trends = {m: words[d] for m, d in directions.items()}
    return Evaluation(int(r["epoch"]), _quality(r), trend, trends, record, variety)


def evaluations(epochs: list[Record]) -> tuple[list[Record], list[Evaluation]]:
    """The evaluated records (one per epoch, every metric the states read finite) and the state of each."""
    read = (*(m for m in TREND_METRICS if m != "distinct"), "confidence")  # see TREND_METRICS
    by_epoch = {int(r["epoch"]): r for r in epochs if all(_finite(r.get(m)) for m in read)}
    evals = [by_epoch[e] for e in sorted(by_epoch)]
    records = _records(evals, TREND_METRICS)
    varieties = _records(evals, {m: TREND_METRICS[m] for m in VARIETY}, variety=True)
    return evals, [_evaluation(evals, i, *new) for i, new in enumerate(zip(records, varieties))]


def _spike(epochs: list[Record], after: int, until: int) -> int | None:
    """The first G-loss spike (with D loss low) in epochs (after, until]."""
    for i, r in enumerate(epochs):
        if not after < r["epoch"] <= until or i < 3:
            continue
        before = statistics.median(e["g_loss"] for e in epochs[i - 3 : i])
        if (
            r["g_loss"] > SPIKE_RATIO * before
            and r["g_loss"] - before >= SPIKE_MIN
            and epochs[i - 1]["d_loss"] < SPIKE_D_LOW
        ):
            return int(r["epoch"])
    return None


def _episodes(states: list[Evaluation]) -> list[tuple[int, int]]:
    """(first, last) indices of each collapsed episode: collapsed evaluations, with poor ones between
    them, ended by a healthy evaluation or by two that are not collapsed (one unreadable wobble of pixel
    diversity across 0.2 is not a recovery)."""
    runs: list[tuple[int, int]] = []
    for i, state in enumerate(states):
        if state.quality != "collapsed":
            continue
        between = states[runs[-1][1] + 1 : i] if runs else []
        if runs and len(between) <= 1 and all(s.quality == "poor" for s in between):
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _stall(states: list[Evaluation], variety: bool = False) -> int | None:
    """The epoch since which unhealthy samples have set no new best (``Evaluation.record``; with
    ``variety``, none in how varied they are, ``Evaluation.variety``); None while the last evaluation is
    healthy."""
    if not states or states[-1].quality == "healthy":
        return None
    moved = (lambda s: s.variety) if variety else (lambda s: s.record)
    # An untrained generator draws near-copies (one noise texture in every cell: pixel diversity 0.03 after
    # one epoch): samples judged twice or more that never got more varied have been stuck since the start.
    start = 0 if variety and len(states) >= 2 else states[0].epoch
    return next((s.epoch for s in reversed(states) if moved(s) or s.quality == "healthy"), start)


def _stuck(states: list[Evaluation], variety: bool = False) -> bool:
    """Unhealthy samples without a new best (with ``variety``: none in how varied they are) for
    ``STUCK_EPOCHS`` (``COLLAPSE_EPOCHS``) and for ``STUCK_SHARE`` of the epochs trained."""
    since = _stall(states, variety)
    least = COLLAPSE_EPOCHS if variety else STUCK_EPOCHS
    return since is not None and states[-1].epoch - since >= max(least, STUCK_SHARE * states[-1].epoch)


def _severe(r: Record) -> bool:
    """Samples a person calls collapsed at a glance: near-copies (``NEAR_COPIES``, or pixels
    near-identical), a few distinct images drawn again and again (``DISTINCT_COLLAPSED``), at most
    ``SEVERE_MODES`` digits, or at most ``MODES_COLLAPSED`` drawn as surely as real ones (``SURE``). The
    judge's digits of unreadable samples are not counted (all alike)."""
    near_copies = (
        r["pixel_diversity"] < PIXEL_DIVERSITY_COLLAPSED
        or (not unreadable(r) and r["diversity"] < NEAR_COPIES)
        or _few_distinct(r)
    )
    few = r["modes_covered"] <= SEVERE_MODES or (r["modes_covered"] <= MODES_COLLAPSED and r["confidence"] >= SURE)
    return near_copies or (few and not unreadable(r))


def mode_collapse(
    epochs: list[Record], evals: list[Record], states: list[Evaluation], d_flag: Flag | None
) -> Flag | None:
    """Collapsed samples (few digits, or near-copies) that are a collapse rather than an untrained G:
    the episode follows healthy samples (a drop), overlaps a D-loss collapse, or lasts to the end stuck
    (``STUCK_EPOCHS``). Dated by the drop, else by the stall or the D-loss collapse, whichever came first,
    and moved back to a G-loss spike since the last healthy evaluation when there is one."""
    chosen = None
    for first, last in _episodes(states):
        ongoing = len(states) - last <= 2 and all(s.quality == "poor" for s in states[last + 1 :])  # see _episodes
        drop = (
            any(s.quality == "healthy" for s in states[:first])
            and (last > first or states[last].trend == "degrading")
            and any(_severe(r) for r in evals[first : last + 1])  # not the wobble of speckled digits
        )
        with_d = (
            d_flag is not None
            and d_flag.epoch is not None
            and d_flag.epoch <= states[last].epoch
            and (d_flag.end is None or states[first].epoch < d_flag.end)
        )
        if drop or with_d or (ongoing and _stuck(states, variety=True)):
            chosen = (first, last, drop, ongoing)
    if chosen is None:
        return _one_look(epochs, evals, states)
    first, last, drop, ongoing = chosen
    onset = states[first].epoch
    if not drop:  # blobs from the start are an untrained G: the collapse is when it stopped moving
        stopped = _stall(states[: last + 1], variety=True)
        assert stopped is not None  # the episode's last evaluation is collapsed, so not healthy
        if d_flag and d_flag.epoch:  # "stuck since the start" (0) dates nothing: the D-loss collapse does
            stopped = min(stopped, d_flag.epoch) if stopped else d_flag.epoch
        onset = max(onset, stopped)
    healthy_until = states[first - 1].epoch if first > 0 else 0
    spike = _spike(epochs, healthy_until, onset)
    r = evals[last]
    evidence = _collapse_evidence(r)
    if spike is not None:
        evidence += f"; G-loss spike at epoch {spike} while D loss was low"
        onset = spike
    end = None if ongoing else states[last + 1].epoch
    return Flag("mode_collapse", onset, evidence, f"mode collapse from epoch {onset} ({_what(r)})", end)


def _one_look(epochs: list[Record], evals: list[Record], states: list[Evaluation]) -> Flag | None:
    """Collapsed samples at the only evaluation of a run long enough (``ONE_LOOK_EPOCHS``) that no
    generator still learning draws such samples: a mode collapse, dated by the losses' one clear change of
    regime before it (``regime_change``), else of unknown onset."""
    if len(states) != 1 or not _severe(evals[0]) or states[0].epoch < ONE_LOOK_EPOCHS:
        return None
    r, epoch = evals[0], states[0].epoch
    change = regime_change([e for e in epochs if e["epoch"] <= epoch])
    if change is None:
        phrase = f"mode collapse at epoch {epoch} ({_what(r)}; one evaluation: onset unknown)"
        return Flag("mode_collapse", epoch, _collapse_evidence(r) + "; the only evaluation", phrase)
    onset, words = change
    phrase = f"mode collapse from epoch {onset} ({_what(r)}; one evaluation, dated by the losses: {words})"
    return Flag("mode_collapse", onset, f"{_collapse_evidence(r)}; the only evaluation; {words}", phrase)


def regime_change(epochs: list[Record]) -> tuple[int, str] | None:
    """The epoch of the losses' one clear change of regime (``REGIME_CLEAR``): G loss up and D loss down
    between the spells it splits the history into, with words saying so; None without one."""
    g, d = [r["g_loss"] for r in epochs], [r["d_loss"] for r in epochs]
    if len(g) < 4 or not all(_finite(x) for x in g + d):
        return None
    g_spells, d_spells = _spells(g), _spells(d)
    best = None
    for k in range(2, len(g) - 1):
        (g0, g1, g_sd), (d0, d1, d_sd) = g_spells[k], d_spells[k]
        clear = g1 - g0 >= max(SPIKE_MIN, REGIME_CLEAR * g_sd) and d0 - d1 >= REGIME_CLEAR * d_sd and d1 < d0
        score = (g1 - g0) / max(g_sd, 1e-12)
        if clear and (best is None or score > best[0]):
            words = f"from epoch {epochs[k]['epoch']} D loss {d0:.2f} -> {d1:.2f}, G loss {g0:.2f} -> {g1:.2f}"
            best = (score, int(epochs[k]["epoch"]), words)
    return None if best is None else best[1:]


def _spells(values: list[float]) -> dict[int, tuple[float, float, float]]:
    """For each split k (2 <= k <= n - 2): (mean of values[:k], mean of values[k:], their pooled
    standard deviation), from running sums: one pass whatever the history's length."""
    n = len(values)
    sums, squares = [0.0], [0.0]
    for v in values:
        sums.append(sums[-1] + v)
        squares.append(squares[-1] + v * v)
    out = {}
    for k in range(2, n - 1):
        m0, m1 = sums[k] / k, (sums[n] - sums[k]) / (n - k)
        within = squares[k] - k * m0 * m0 + (squares[n] - squares[k]) - (n - k) * m1 * m1
        out[k] = (m0, m1, math.sqrt(max(within, 0.0) / (n - 2)))
    return out


def _collapse_evidence(r: Record) -> str:
    distinct = f", ~{r['distinct']:.0f} distinct images" if _few_distinct(r) else ""
    return (
        f"{r['modes_covered']}/10 digits covered{distinct}, diversity {r['diversity']:.2f} (pixels "
        f"{r['pixel_diversity']:.2f}), confidence {r['confidence']:.2f} at epoch {r['epoch']}"
    )


def _what(r: Record) -> str:
    if r["confidence"] < LOW_CONFIDENCE:
        return "near-identical samples"
    if _few_distinct(r) and r["modes_covered"] > SEVERE_MODES:  # a few digits say it already
        return f"~{r['distinct']:.0f} distinct images, {r['modes_covered']}/10 digits"
    return f"{r['modes_covered']}/10 digits"


def _wobble(values: list[float]) -> float:
    """The standard deviation of ``values`` about their least-squares line: oscillation, not trend."""
    x = range(len(values))
    mx, my = statistics.fmean(x), statistics.fmean(values)
    slope = sum((a - mx) * (b - my) for a, b in zip(x, values)) / sum((a - mx) ** 2 for a in x)
    return statistics.pstdev([b - my - slope * (a - mx) for a, b in zip(x, values)])


def unstable(epochs: list[Record], before: int | None, change: int | None = None) -> Flag | None:
    """Large G-loss oscillation after the losses had settled (windows starting before ``before``). Windows
    across the losses' one change of regime (``regime_change``: its epoch ``change``) are not read: a jump
    from one level to another is not an oscillation."""
    g = [r["g_loss"] for r in epochs]
    if len(g) < UNSTABLE_MIN_EPOCHS or not all(_finite(x) for x in g):
        return None
    spreads = [_wobble(g[i : i + UNSTABLE_WINDOW]) for i in range(len(g) - UNSTABLE_WINDOW + 1)]
    typical = statistics.median(spreads[UNSTABLE_WINDOW:])
    limit = max(UNSTABLE_RATIO * typical, UNSTABLE_MIN_STD)
    hot = [
        i
        for i, s in enumerate(spreads)
        if i >= UNSTABLE_WINDOW
        and s > limit
        and (before is None or epochs[i]["epoch"] < before - UNSTABLE_WINDOW + 1)
        and (change is None or not epochs[i]["epoch"] < change <= epochs[i + UNSTABLE_WINDOW - 1]["epoch"])
    ]
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
    return Flag(
        "unstable",
        start,
        f"G-loss wobble (std about its trend) {worst:.2f} in epochs {start}-{end} vs {typical:.2f} typical",
        f"unstable at epochs {start}-{end}",
        None if end >= epochs[-1]["epoch"] else end + 1,
    )


def sample_verdict(evals: list[Record], states: list[Evaluation], collapsed: bool) -> Flag | None:
    """What the last samples say when no collapse was flagged and they are not healthy: low quality
    (poor samples stuck: no new best for ``STUCK_EPOCHS``/``STUCK_SHARE``), under-trained (improving; for
    collapsed samples, in ``VARIETY``: drawing one digit better is not learning more), or too early."""
    if not states or states[-1].quality == "healthy" or collapsed:
        return None
    last, state = evals[-1], states[-1]
    poor = state.quality == "poor"
    epoch, since = state.epoch, _stall(states, variety=not poor)
    if illegible(last) and epoch >= ONE_LOOK_EPOCHS:
        start = next((s.epoch for s, r in zip(reversed(states), reversed(evals)) if not illegible(r)), None)
        unread = states[0].epoch if start is None else next(s.epoch for s in states if s.epoch > start)
        return Flag(
            "low_quality",
            unread,
            f"the judge reads none of the samples at epoch {epoch} (confidence {last['confidence']:.2f}, pixel "
            f"diversity {last['pixel_diversity']:.2f}), unreadable since epoch {unread}",
            f"low quality (samples unreadable at epoch {epoch})",
        )
    if poor and _stuck(states):
        return Flag(
            "low_quality",
            since,
            f"{_fid_words(last)}, confidence {last['confidence']:.2f} at epoch {epoch}, no better since epoch {since}",
            f"low quality ({_fid_words(last)})",
        )
    read = {m: t for m, t in state.trends.items() if poor or m in VARIETY}
    if "improving" in read.values() and "degrading" not in read.values():
        trends = ", ".join(m for m, t in read.items() if t == "improving")
        return Flag(
            "under_trained",
            epoch,
            f"{state.quality} samples at epoch {epoch}; improving: {trends}",
            f"still improving at epoch {epoch} — train longer",
        )
    why = (
        "one evaluation" if state.trend is None else f"no more {'improving' if poor else 'varied'} since epoch {since}"
    )
    return Flag(
        "too_early", epoch, f"{state.quality} samples at epoch {epoch}, {why}", f"too early to tell at epoch {epoch}"
    )


def _fid_words(r: Record) -> str:
    """fid_mnist, unless the judge could not read the samples (then it is a constant, not a score)."""
    return "samples unreadable" if unreadable(r) else f"fid_mnist {r['fid_mnist']:.0f}"


def hopeless(diagnosis: Diagnosis) -> Flag | None:
    """The lasting D-loss collapse of a trial that cannot recover, or None: D has won (``d_collapse``),
    the last samples are collapsed (few digits or near-copies) and they are stuck (no new best for
    ``STUCK_EPOCHS`` and ``STUCK_SHARE`` of the epochs). What ``early_stop: auto`` stops on. Measured on
    the real-run regression set (``tests/diagnostics_tests/real_runs``): the three runs that reach this
    state (at epochs 12, 14 and 21) all end bad at 16, 40 and 30 epochs: D sometimes wins less later,
    but the samples never come back. Report 000's collapses last to the end (30+ epochs) likewise. An
    under-trained G, an instability, or collapsed samples that still set new bests are never stopped."""
    lasting = next((f for f in diagnosis.flags if f.name == "d_collapse" and f.end is None), None)
    states = diagnosis.evaluations
    if lasting is None or not states or states[-1].quality != "collapsed" or not _stuck(states, variety=True):
        return None
    return lasting


def _verdict(flags: list[Flag]) -> str:
    lasting = [f.wording for f in flags if f.end is None]
    recovered = [f.wording for f in flags if f.end is not None]
    return "; ".join(lasting + recovered) if lasting else "; ".join(["good", *recovered])


def diagnose(epochs: list[Record]) -> Diagnosis:
    """All flags of a trial, its one-line verdict, its last evaluated metrics and each evaluation's state."""
    evals, states = evaluations(epochs)
    d_flag = d_collapse(epochs, states)
    flags: list[Flag] = [f for f in (diverged(epochs), d_flag, mode_collapse(epochs, evals, states, d_flag)) if f]
    lasting_d = d_flag if d_flag is not None and d_flag.end is None else None
    change = regime_change(epochs)
    flags += [f for f in (unstable(epochs, lasting_d.epoch if lasting_d else None, change and change[0]),) if f]
    collapsed = any(f.name in ("d_collapse", "mode_collapse") and f.end is None for f in flags)
    flags += [f for f in (sample_verdict(evals, states, collapsed),) if f]
    if not flags and not evals and len(epochs) == 1:  # no samples to read, and the loss flags need 2+ epochs
        epoch = int(epochs[0]["epoch"])
        flags.append(Flag("too_early", epoch, "one epoch, no samples", f"too early to tell at epoch {epoch}"))
    metrics = {k: evals[-1][k] for k in METRICS if k in evals[-1]} if evals else {}
    return Diagnosis(flags, _verdict(flags), metrics, states)
