"""Both sides of every threshold in ``gansweep/diagnostics/flags.py``, each rule alone.

Each test builds plain per-epoch records (no judge, no training) that are healthy in everything but the
quantity under test, and puts that quantity just inside and just outside its threshold, read from the
module. ``test_each_threshold_is_the_number_the_readme_gives`` holds every threshold to the README's
Diagnosis section, so moving a threshold fails here; deleting the rule that reads it fails a boundary test.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gansweep.diagnostics import flags
from gansweep.diagnostics.flags import diagnose

README = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
CALM = {"d_loss": 1.0, "g_loss": 1.0, "d_real": 0.7, "d_fake": 0.3}
HEALTHY = {"modes_covered": 10, "diversity": 1.0, "pixel_diversity": 1.0, "confidence": 0.98, "fid_mnist": 40.0}
COLLAPSED = {"modes_covered": 2}
POOR = {"fid_mnist": 1300.0}
UNREADABLE = {"confidence": 0.1, "modes_covered": 1, "diversity": 0.0, "fid_mnist": 1314.0, "readable": 0.0}
"""What the judge makes of garbage: its own metrics pinned, so only the pixels can tell blobs apart."""


def trial(epochs: int, **losses: list[float]) -> list[dict]:
    """Calm epochs 1..epochs; a loss given as a list replaces that column."""
    return [{"epoch": e, **CALM, **{k: v[e - 1] for k, v in losses.items()}} for e in range(1, epochs + 1)]


def judged(history: list[dict], samples: dict[int, dict]) -> list[dict]:
    """``history`` with samples judged at the given epochs: healthy metrics but for the given ones."""
    for epoch, metrics in samples.items():
        history[epoch - 1].update(HEALTHY, **metrics)
    return history


def flagged(history: list[dict]) -> list[tuple[str, int | None, int | None]]:
    return [(f.name, f.epoch, f.end) for f in diagnose(history).flags]


CONTRACT = [
    ("D_COLLAPSE_FAKE", 0.05, "D(G(z)) < 0.05"),
    ("D_COLLAPSE_LOSS", 0.1, "median D loss < 0.1"),
    ("D_COLLAPSE_EPOCHS", 3, "≥ 3 consecutive epochs (or ≥ 2 ending the trial)"),
    ("G_HIGH", 3.0, "G loss ≥ 3 or rising"),
    ("MODES_COLLAPSED", 6, "≤ 6/10 digits"),
    ("DIVERSITY_COLLAPSED", 0.4, "judge diversity < 0.4"),
    ("PIXEL_DIVERSITY_COLLAPSED", 0.2, "pixel diversity < 0.2"),
    ("DISTINCT_COLLAPSED", 400, "≤ 400 distinct images"),
    ("REGIME_CLEAR", 4.0, "4 standard deviations of the spells"),
    ("SPIKE_RATIO", 1.5, "1.5× the previous 3 epochs' median"),
    ("SPIKE_MIN", 1.0, "median, +1.0"),
    ("SPIKE_D_LOW", 0.5, "+1.0, D loss < 0.5"),
    ("LOW_CONFIDENCE", 0.5, "confidence < 0.5"),
    ("FID_HIGH", 500.0, "`fid_mnist` > 500"),
    ("UNSTABLE_WINDOW", 3, "after a 3-epoch warm-up, a 3-epoch window"),
    ("UNSTABLE_RATIO", 4.0, "G-loss std is 4× the trial's median window"),
    ("UNSTABLE_MIN_STD", 0.5, "median window and ≥ 0.5"),
    ("UNSTABLE_MIN_EPOCHS", 8, "(≥ 8 epochs needed)"),
    (
        "TREND_METRICS",
        {"fid_mnist": -1, "diversity": 1, "modes_covered": 1, "pixel_diversity": 1, "distinct": 1},
        "in `fid_mnist`, `diversity`, `modes_covered`, `pixel_diversity` and `distinct`",
    ),
    ("FID_NOISE", (5.0, 0.015), "`fid_mnist` ±(5 + 1.5 % of its value)"),
    ("DISTINCT_NOISE", 0.15, "`distinct` ±15 % of its value"),
    (
        "NOISE",
        {"diversity": 0.01, "modes_covered": 0.5, "pixel_diversity": 0.01},
        "diversity ±0.01, pixel diversity ±0.01, digits covered ±0 (half a digit is allowed for rounding)",
    ),
    ("TREND_Z", 2.0, "more than 2√2 spreads between two evaluations"),
    ("TREND_T", 2.0, "over 4 or more, a least-squares slope 2 standard errors from zero"),
    ("STUCK_EPOCHS", 8, "no new best for 8 epochs"),
    ("STUCK_SHARE", 1 / 3, "and for a third of the epochs trained"),
    (
        "VARIETY",
        ("modes_covered", "diversity", "pixel_diversity", "distinct"),
        "in variety (digits covered, diversity, pixel diversity or distinct images",
    ),
    ("NEAR_COPIES", 0.1, "judge diversity < 0.1"),
    ("COLLAPSE_EPOCHS", 11, "for 11 epochs and for a third of the epochs trained"),
    ("SEVERE_MODES", 2, "≤ 2/10 digits"),
    ("SURE", 0.9, "confidence ≥ 0.9"),
    ("ONE_LOOK_EPOCHS", 20, "from epoch 20 on"),
    ("TREND_MIN", 3, "(3 to 8 of them)"),
    ("TREND_MAX", 8, "(3 to 8 of them)"),
]


@pytest.mark.parametrize(("name", "value", "readme"), CONTRACT, ids=[name for name, _, _ in CONTRACT])
def test_each_threshold_is_the_number_the_readme_gives(name: str, value: object, readme: str) -> None:
    assert getattr(flags, name) == value
    assert readme in README


def test_every_threshold_is_in_the_contract() -> None:
    imported = {"METRICS"}  # the sample metrics' names, from metrics.py
    constants = {name for name in vars(flags) if name.isupper()} - {"FLAG_NAMES", "BAD_FLAGS"} - imported
    assert constants == {name for name, _, _ in CONTRACT}


@pytest.mark.parametrize(
    ("samples", "quality"),
    [
        pytest.param({"modes_covered": flags.MODES_COLLAPSED + 1}, "healthy", id="one digit over MODES_COLLAPSED"),
        pytest.param({"modes_covered": flags.MODES_COLLAPSED}, "collapsed", id="MODES_COLLAPSED digits"),
        pytest.param(
            {"diversity": flags.DIVERSITY_COLLAPSED + 0.01}, "healthy", id="diversity over DIVERSITY_COLLAPSED"
        ),
        pytest.param(
            {"diversity": flags.DIVERSITY_COLLAPSED - 0.01}, "collapsed", id="diversity under DIVERSITY_COLLAPSED"
        ),
        pytest.param({"fid_mnist": flags.FID_HIGH - 1}, "healthy", id="fid_mnist under FID_HIGH"),
        pytest.param({"fid_mnist": flags.FID_HIGH + 1}, "poor", id="fid_mnist over FID_HIGH"),
        pytest.param({"confidence": flags.LOW_CONFIDENCE + 0.01}, "healthy", id="confidence over LOW_CONFIDENCE"),
        pytest.param({"confidence": flags.LOW_CONFIDENCE - 0.01}, "poor", id="confidence under LOW_CONFIDENCE"),
        pytest.param(
            UNREADABLE | {"pixel_diversity": flags.PIXEL_DIVERSITY_COLLAPSED + 0.01},
            "poor",
            id="unreadable, pixel diversity over PIXEL_DIVERSITY_COLLAPSED",
        ),
        pytest.param(
            UNREADABLE | {"pixel_diversity": flags.PIXEL_DIVERSITY_COLLAPSED - 0.01},
            "collapsed",
            id="unreadable, pixel diversity under PIXEL_DIVERSITY_COLLAPSED",
        ),
        pytest.param(
            {"pixel_diversity": flags.PIXEL_DIVERSITY_COLLAPSED - 0.01},
            "healthy",
            id="readable, pixel diversity under PIXEL_DIVERSITY_COLLAPSED",
        ),
    ],
)
def test_the_quality_of_one_evaluation(samples: dict, quality: str) -> None:
    diagnosis = diagnose(judged(trial(1), {1: samples}))
    assert diagnosis.evaluations[0].quality == quality
    assert diagnosis.outcome == ("good" if quality == "healthy" else "unclear")  # one evaluation: too early


LEVEL = {"fid_mnist": 1000.0, "diversity": 0.5, "modes_covered": 5, "pixel_diversity": 0.5, "distinct": 100.0}
"""Where the trend tests sit; at fid_mnist 1000 both terms of its spread count."""
MARGIN = flags.TREND_Z * math.sqrt(2)
"""A change beyond noise, in spreads: the difference of two evaluations has √2 spreads."""


def spread(metric: str, value: float) -> float:
    if metric == "distinct":
        return flags.DISTINCT_NOISE * value
    return flags.FID_NOISE[0] + flags.FID_NOISE[1] * value if metric == "fid_mnist" else flags.NOISE[metric]


@pytest.mark.parametrize("metric", list(flags.TREND_METRICS))
@pytest.mark.parametrize(
    ("margins", "trend"),
    [(0.99, "flat"), (1.01, "improving"), (-1.01, "degrading")],
    ids=["better within noise", "better beyond noise", "worse beyond noise"],
)
def test_two_evaluations_trend_only_beyond_the_noise(metric: str, margins: float, trend: str) -> None:
    """Two evaluations around LEVEL, so the fid_mnist spread is read at LEVEL, their mean."""
    change = margins * MARGIN * spread(metric, LEVEL[metric]) * flags.TREND_METRICS[metric]
    samples = {1: LEVEL | {metric: LEVEL[metric] - change / 2}, 2: LEVEL | {metric: LEVEL[metric] + change / 2}}
    state = diagnose(judged(trial(2), samples)).evaluations[-1]
    assert (state.trends[metric], state.trend) == (trend, trend)


@pytest.mark.parametrize("metric", list(flags.TREND_METRICS))
@pytest.mark.parametrize(("margins", "record"), [(0.99, False), (1.01, True)], ids=["within noise", "beyond noise"])
def test_a_new_best_betters_the_first_evaluation_beyond_noise(metric: str, margins: float, record: bool) -> None:
    """The fid_mnist spread of a new best is read at its own value, LEVEL."""
    change = margins * MARGIN * spread(metric, LEVEL[metric]) * flags.TREND_METRICS[metric]
    samples = {1: LEVEL | {metric: LEVEL[metric] - change}, 2: LEVEL}
    assert diagnose(judged(trial(2), samples)).evaluations[-1].record is record


@pytest.mark.parametrize(
    ("window", "t", "trend"),
    [
        pytest.param(4, 0.95 * flags.TREND_T, "flat", id="4 evaluations, t under TREND_T"),
        pytest.param(4, 1.05 * flags.TREND_T, "improving", id="4 evaluations, t over TREND_T"),
        pytest.param(3, 0.5 * flags.TREND_T, "improving", id="3 evaluations, no t test"),
    ],
)
def test_a_slope_over_four_or_more_evaluations_stands_out_from_their_scatter(window: int, t: float, trend: str) -> None:
    """The last half of 2 × window evaluations: fid_mnist falling 50 an epoch (far beyond noise) plus scatter
    orthogonal to that line, sized so that the slope is t standard errors from zero."""
    x = [i - (window - 1) / 2 for i in range(window)]
    scatter = {3: [1, -2, 1], 4: [1, -1, -1, 1]}[window]
    size = 50 * math.sqrt(sum(a * a for a in x) * (window - 2) / sum(e * e for e in scatter)) / t
    fid = [1000.0] * window + [1000 - 50 * a + size * e for a, e in zip(x, scatter)]
    history = judged(trial(2 * window), {epoch: {"fid_mnist": f} for epoch, f in enumerate(fid, 1)})
    assert diagnose(history).evaluations[-1].trends["fid_mnist"] == trend


@pytest.mark.parametrize(
    ("evaluations", "window", "worse"),
    [
        pytest.param(4, flags.TREND_MIN, 1, id="4 evaluations: TREND_MIN"),
        pytest.param(12, 6, 2, id="12 evaluations: half"),
        pytest.param(20, flags.TREND_MAX, 2, id="20 evaluations: TREND_MAX"),
    ],
)
def test_a_trend_reads_the_last_half_of_the_evaluations_within_bounds(
    evaluations: int, window: int, worse: int
) -> None:
    """Worse fid_mnist in the first evaluations of the window is improvement; placed one evaluation
    earlier (outside) or later (a shorter window) it is not. (One worse evaluation ahead of 4 or more is
    within their scatter, t = 1.7, hence two.)"""

    def trend(window: int) -> str:
        fid = [800.0] * (evaluations - window) + [1000.0] * worse + [800.0] * (window - worse)
        history = judged(trial(evaluations), {epoch: {"fid_mnist": f} for epoch, f in enumerate(fid, 1)})
        return diagnose(history).evaluations[-1].trend

    assert (trend(window + 1), trend(window), trend(window - 1)) == ("flat", "improving", "flat")


SHARE_TRIAL = 30
"""A trial long enough for a third of it (10 epochs) to be more than STUCK_EPOCHS."""


@pytest.mark.parametrize(
    ("epochs", "best", "stuck"),
    [
        pytest.param(1 + flags.STUCK_EPOCHS, 1, True, id="STUCK_EPOCHS without a new best"),
        pytest.param(flags.STUCK_EPOCHS, 1, False, id="one epoch fewer"),
        pytest.param(
            SHARE_TRIAL,
            SHARE_TRIAL - math.ceil(flags.STUCK_SHARE * SHARE_TRIAL),
            True,
            id="STUCK_SHARE of the trial without a new best",
        ),
        pytest.param(
            SHARE_TRIAL,
            SHARE_TRIAL - math.ceil(flags.STUCK_SHARE * SHARE_TRIAL) + 1,
            False,
            id="one epoch less than STUCK_SHARE",
        ),
    ],
)
def test_poor_samples_are_stuck_without_a_new_best_for_long_enough(epochs: int, best: int, stuck: bool) -> None:
    """Poor samples judged every epoch: fid_mnist 1300, then 1000 from their last new best on."""
    samples = {e: {"fid_mnist": 1300.0 if e < best else 1000.0} for e in range(1, epochs + 1)}
    expected = [("low_quality", best, None) if stuck else ("too_early", epochs, None)]
    assert flagged(judged(trial(epochs), samples)) == expected


COLLAPSE_TRIAL = 36
"""A trial long enough for a third of it (12 epochs) to be more than COLLAPSE_EPOCHS."""


def varied_at(best: int, epochs: int) -> dict[int, dict]:
    """Collapsed samples judged every epoch: diversity 0.1, then 0.3 from their last new best in variety
    on, and fid_mnist falling all along (new bests that do not count: the samples are no more varied)."""
    return {
        e: COLLAPSED | {"diversity": 0.1 if e < best else 0.3, "fid_mnist": 1300.0 - 40 * e}
        for e in range(1, epochs + 1)
    }


@pytest.mark.parametrize(
    ("epochs", "best", "stuck"),
    [
        pytest.param(2 + flags.COLLAPSE_EPOCHS, 2, True, id="COLLAPSE_EPOCHS without a new best in variety"),
        pytest.param(1 + flags.COLLAPSE_EPOCHS, 2, False, id="one epoch fewer"),
        pytest.param(flags.COLLAPSE_EPOCHS, 1, True, id="never more varied: stuck since the start"),
        pytest.param(flags.COLLAPSE_EPOCHS - 1, 1, False, id="never more varied, one epoch fewer"),
        pytest.param(
            COLLAPSE_TRIAL,
            COLLAPSE_TRIAL - math.ceil(flags.STUCK_SHARE * COLLAPSE_TRIAL),
            True,
            id="STUCK_SHARE of the trial without one",
        ),
        pytest.param(
            COLLAPSE_TRIAL,
            COLLAPSE_TRIAL - math.ceil(flags.STUCK_SHARE * COLLAPSE_TRIAL) + 1,
            False,
            id="one epoch less than STUCK_SHARE",
        ),
    ],
)
def test_collapsed_samples_are_stuck_without_a_new_best_in_variety_for_long_enough(
    epochs: int, best: int, stuck: bool
) -> None:
    expected = [("mode_collapse", best, None)] if stuck else [("too_early", epochs, None)]  # fid's trend not read
    assert flagged(judged(trial(epochs), varied_at(best, epochs))) == expected


@pytest.mark.parametrize(
    ("after", "variety"),
    [(0.1 + 1.01 * MARGIN * flags.NOISE["diversity"], True), (0.1 + 0.99 * MARGIN * flags.NOISE["diversity"], False)],
    ids=["holds beyond noise", "falls back within noise"],
)
def test_a_new_best_in_variety_holds_at_the_next_evaluation(after: float, variety: bool) -> None:
    samples = {
        1: COLLAPSED | {"diversity": 0.1},
        2: COLLAPSED | {"diversity": 0.3},
        3: COLLAPSED | {"diversity": after},
    }
    assert diagnose(judged(trial(3), samples)).evaluations[1].variety is variety


def test_the_diversity_of_unreadable_samples_is_not_a_new_best_in_variety() -> None:
    """Unreadable samples have diversity 0 (all features zero): readable near-copies after them are no
    more varied for it."""
    samples = {e: UNREADABLE | {"pixel_diversity": 0.1} for e in (1, 2)} | {
        e: COLLAPSED | {"diversity": 0.05, "pixel_diversity": 0.1} for e in (3, 4)
    }
    assert not any(e.variety for e in diagnose(judged(trial(4), samples)).evaluations)


STALL = 6
"""The last new best in variety of the samples in the onset tests."""


END = STALL + flags.COLLAPSE_EPOCHS


@pytest.mark.parametrize(
    ("d_winning", "expected"),
    [
        pytest.param(range(0), [("mode_collapse", STALL, None)], id="stuck: dated by the stall"),
        pytest.param(
            range(STALL - 2, END + 1),
            [("d_collapse", STALL - 2, None), ("mode_collapse", STALL - 2, None)],
            id="D-loss collapse before the stall: dated by it",
        ),
        pytest.param(
            range(STALL + 3, END + 1),
            [("d_collapse", STALL + 3, None), ("mode_collapse", STALL, None)],
            id="D-loss collapse after the stall: dated by the stall",
        ),
    ],
)
def test_a_collapse_without_healthy_samples_or_a_spike_is_dated_by_its_stall_or_d_collapse(
    d_winning: range, expected: list
) -> None:
    """Collapsed samples from epoch 1, more varied to a last new best at STALL, then stuck to END; the G
    loss rises slowly (a D-loss collapse without a spike)."""
    won = [e in d_winning for e in range(1, END + 1)]
    history = trial(
        END,
        d_fake=[0.01 if w else 0.3 for w in won],
        d_loss=[0.01 if w else 1.0 for w in won],
        g_loss=[1 + 0.1 * e for e in range(1, END + 1)],
    )
    samples = {
        e: COLLAPSED | {"fid_mnist": 1300.0 - 100 * (min(e, STALL) - 1), "diversity": 0.05 * min(e, STALL)}
        for e in range(1, END + 1)
    }
    assert flagged(judged(history, samples)) == expected


@pytest.mark.parametrize(
    ("samples", "severe"),
    [
        pytest.param({"modes_covered": flags.SEVERE_MODES}, True, id="SEVERE_MODES digits"),
        pytest.param({"modes_covered": flags.SEVERE_MODES + 1}, False, id="one digit more"),
        pytest.param({"modes_covered": flags.MODES_COLLAPSED, "confidence": flags.SURE}, True, id="few digits, SURE"),
        pytest.param({"modes_covered": flags.MODES_COLLAPSED, "confidence": flags.SURE - 0.01}, False, id="less sure"),
        pytest.param({"diversity": flags.NEAR_COPIES - 0.01}, True, id="diversity under NEAR_COPIES"),
        pytest.param({"diversity": flags.NEAR_COPIES + 0.01}, False, id="diversity over NEAR_COPIES"),
        pytest.param(
            UNREADABLE | {"pixel_diversity": flags.PIXEL_DIVERSITY_COLLAPSED - 0.01}, True, id="unreadable near-copies"
        ),
        pytest.param(UNREADABLE | {"pixel_diversity": 0.5}, False, id="unreadable, varied pixels"),
    ],
)
@pytest.mark.parametrize("epoch", [flags.ONE_LOOK_EPOCHS, flags.ONE_LOOK_EPOCHS - 1])
def test_one_evaluation_of_a_long_enough_run_is_a_mode_collapse_when_severe(
    samples: dict, severe: bool, epoch: int
) -> None:
    """A run judged once, at its last epoch: severe samples from ONE_LOOK_EPOCHS on are a mode collapse
    of unknown onset; anything else, or earlier, is too early to tell (for these unhealthy samples)."""
    base = {"modes_covered": flags.MODES_COLLAPSED, "confidence": 0.8, "diversity": 0.3}
    diagnosis = diagnose(judged(trial(epoch), {epoch: base | samples}))
    if severe and epoch >= flags.ONE_LOOK_EPOCHS:
        assert flagged_of(diagnosis) == [("mode_collapse", epoch, None)]
        assert diagnosis.verdict.endswith("; one evaluation: onset unknown)")
    elif samples.get("readable") == 0.0 and epoch >= flags.ONE_LOOK_EPOCHS:  # unreadable that late: bad
        assert flagged_of(diagnosis) == [("low_quality", epoch, None)]
    else:
        assert flagged_of(diagnosis) == [("too_early", epoch, None)]


def flagged_of(diagnosis) -> list[tuple[str, int | None, int | None]]:
    return [(f.name, f.epoch, f.end) for f in diagnosis.flags]


@pytest.mark.parametrize(("confidence", "collapse"), [(flags.SURE, True), (flags.SURE - 0.01, False)])
def test_a_drop_from_healthy_samples_is_a_collapse_only_when_severe(confidence: float, collapse: bool) -> None:
    """Healthy at epoch 5, 6/10 digits at 10 and 11: drawn as surely as real digits, a drop; less surely,
    the judge's count of speckled digits running low (a cs231n-mlp at epoch 38 drew all ten at 6/10)."""
    dropped = COLLAPSED | {"modes_covered": flags.MODES_COLLAPSED, "confidence": confidence}
    names = [f.name for f in diagnose(judged(trial(11), {5: {}, 10: dropped, 11: dropped})).flags]
    assert names == (["mode_collapse"] if collapse else ["too_early"])


@pytest.mark.parametrize(
    ("g_before", "spike_epoch", "g_spike", "d_loss", "onset"),
    [
        pytest.param(4.0, 7, flags.SPIKE_RATIO * 4.0 + 0.1, 0.3, 7, id="over SPIKE_RATIO x the median"),
        pytest.param(4.0, 7, flags.SPIKE_RATIO * 4.0 - 0.1, 0.3, 10, id="under SPIKE_RATIO x the median"),
        pytest.param(1.0, 7, 1.0 + flags.SPIKE_MIN + 0.05, 0.3, 7, id="over SPIKE_MIN above the median"),
        pytest.param(1.0, 7, 1.0 + flags.SPIKE_MIN - 0.05, 0.3, 10, id="under SPIKE_MIN above the median"),
        pytest.param(4.0, 7, 8.0, flags.SPIKE_D_LOW - 0.01, 7, id="D loss under SPIKE_D_LOW"),
        pytest.param(4.0, 7, 8.0, flags.SPIKE_D_LOW + 0.01, 10, id="D loss over SPIKE_D_LOW"),
        pytest.param(4.0, 6, 8.0, 0.3, 6, id="the epoch after the last healthy samples"),
        pytest.param(4.0, 5, 8.0, 0.3, 10, id="the epoch of the last healthy samples"),
    ],
)
def test_a_drop_is_dated_back_to_a_g_loss_spike(
    g_before: float, spike_epoch: int, g_spike: float, d_loss: float, onset: int
) -> None:
    """Healthy samples at epoch 5, collapsed at 10 and 11: a drop, dated 10 unless a spike came first. (With
    SPIKE_RATIO binding at G loss 4 the spike is more than SPIKE_MIN above it; at 1, the other way round.)"""
    g_loss = [g_before] * 11
    g_loss[spike_epoch - 1] = g_spike
    history = judged(trial(11, d_loss=[d_loss] * 11, g_loss=g_loss), {5: {}, 10: COLLAPSED, 11: COLLAPSED})
    assert next(f.epoch for f in diagnose(history).flags if f.name == "mode_collapse") == onset


@pytest.mark.parametrize(
    ("between", "onset"),
    [(1, 5), (2, 10)],
    ids=["one poor evaluation: the same collapse", "two poor evaluations: a new collapse"],
)
def test_a_collapse_ends_at_two_evaluations_that_are_not_collapsed(between: int, onset: int) -> None:
    """Healthy samples to epoch 4, collapsed for three evaluations, poor for ``between``, collapsed for three."""
    samples = [{}] * 4 + [COLLAPSED] * 3 + [POOR] * between + [COLLAPSED] * 3
    history = judged(trial(len(samples)), dict(enumerate(samples, 1)))
    assert flagged(history) == [("mode_collapse", onset, None)]


def d_wins(
    wins: range, epochs: int = 10, d_fake: float = 0.01, d_loss: float = 0.01, g_loss: list[float] | None = None
) -> list[dict]:
    """Calm but for the epochs in ``wins``, where D rejects the fakes at a low loss; G loss high throughout
    unless given."""
    won = [e in wins for e in range(1, epochs + 1)]
    return trial(
        epochs,
        d_fake=[d_fake if w else 0.3 for w in won],
        d_loss=[d_loss if w else 1.0 for w in won],
        g_loss=g_loss or [flags.G_HIGH + 2] * epochs,
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param(
            {"d_fake": flags.D_COLLAPSE_FAKE - 0.01}, [("d_collapse", 4, None)], id="D(G(z)) under D_COLLAPSE_FAKE"
        ),
        pytest.param({"d_fake": flags.D_COLLAPSE_FAKE + 0.01}, [], id="D(G(z)) over D_COLLAPSE_FAKE"),
        pytest.param(
            {"d_loss": flags.D_COLLAPSE_LOSS - 0.01}, [("d_collapse", 4, None)], id="D loss under D_COLLAPSE_LOSS"
        ),
        pytest.param({"d_loss": flags.D_COLLAPSE_LOSS + 0.01}, [], id="D loss over D_COLLAPSE_LOSS"),
        pytest.param({"g_loss": [flags.G_HIGH + 0.1] * 10}, [("d_collapse", 4, None)], id="flat G loss over G_HIGH"),
        pytest.param({"g_loss": [flags.G_HIGH - 0.1] * 10}, [], id="flat G loss under G_HIGH"),
        pytest.param(
            {"g_loss": [1 + 0.1 * e for e in range(10)]}, [("d_collapse", 4, None)], id="G loss under G_HIGH but rising"
        ),
        pytest.param(
            {"wins": range(4, 4 + flags.D_COLLAPSE_EPOCHS)},
            [("d_collapse", 4, 4 + flags.D_COLLAPSE_EPOCHS)],
            id="D_COLLAPSE_EPOCHS mid-trial",
        ),
        pytest.param({"wins": range(4, 3 + flags.D_COLLAPSE_EPOCHS)}, [], id="one epoch fewer mid-trial"),
        pytest.param({"wins": range(9, 11)}, [("d_collapse", 9, None)], id="two epochs ending the trial"),
        pytest.param({"wins": range(10, 11)}, [], id="one epoch ending the trial"),
    ],
)
def test_d_collapse_thresholds(case: dict, expected: list) -> None:
    assert flagged(d_wins(**{"wins": range(4, 11)} | case)) == expected


def climbing(best: int) -> dict[int, dict]:
    """Poor samples judged every epoch to 12: fid_mnist 1300, a new best (1150) at ``best``, then gains
    within the noise."""
    return {e: {"fid_mnist": 1300.0 if e < best else 1150.0 - 15 * (e - best)} for e in range(1, 13)}


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        pytest.param({12: {}}, [], id="healthy at the last evaluation"),
        pytest.param({12: POOR}, ["d_collapse"], id="poor at the last evaluation"),
        pytest.param(
            climbing(13 - flags.TREND_MIN), ["under_trained"], id="improving, a new best in the last TREND_MIN"
        ),
        pytest.param(climbing(12 - flags.TREND_MIN), ["d_collapse"], id="improving, no new best in the last TREND_MIN"),
    ],
)
def test_d_collapse_spares_a_generator_still_learning(samples: dict, expected: list) -> None:
    """D wins from epoch 4 to the end (12)."""
    history = judged(d_wins(range(4, 13), epochs=12), samples)
    assert [f.name for f in diagnose(history).flags] == expected


def oscillating(epochs: int, bursts: dict[range, float], background: float = 0.0) -> list[dict]:
    """G loss alternating around 1, with each burst's 3-epoch std in its epochs and ``background``
    elsewhere (a window of ±a has std a·√8/3)."""
    std = [next((s for burst, s in bursts.items() if e in burst), background) for e in range(1, epochs + 1)]
    return trial(epochs, g_loss=[1 + (-1) ** e * s * 3 / math.sqrt(8) for e, s in enumerate(std, 1)])


QUIET = flags.UNSTABLE_MIN_STD / 2
"""A background std at which UNSTABLE_RATIO, not UNSTABLE_MIN_STD, sets the limit."""
LOUD = 3.0
"""A kick alone at a window's edge wobbles about the window's line by 1/sqrt(18) of its size (a window of
±a alternation by its full std), so a kick that must count is this loud."""
WARM_UP = {range(1, 1 + flags.UNSTABLE_WINDOW): LOUD}


def kick(epoch: int) -> dict[range, float]:
    return {range(epoch, epoch + 1): LOUD}


@pytest.mark.parametrize(
    ("epochs", "bursts", "background", "unstable"),
    [
        pytest.param(20, {range(10, 13): 1.02 * flags.UNSTABLE_MIN_STD}, 0.0, True, id="over UNSTABLE_MIN_STD"),
        pytest.param(20, {range(10, 13): 0.98 * flags.UNSTABLE_MIN_STD}, 0.0, False, id="under UNSTABLE_MIN_STD"),
        pytest.param(
            20, {range(10, 13): 1.02 * flags.UNSTABLE_RATIO * QUIET}, QUIET, True, id="over UNSTABLE_RATIO x background"
        ),
        pytest.param(
            20,
            {range(10, 13): 0.98 * flags.UNSTABLE_RATIO * QUIET},
            QUIET,
            False,
            id="under UNSTABLE_RATIO x background",
        ),
        pytest.param(
            20, {range(2, 2 + flags.UNSTABLE_WINDOW): LOUD}, 0.0, True, id="a loud burst that ends after the warm-up"
        ),
        pytest.param(20, WARM_UP, 0.0, False, id="a loud burst within the warm-up"),
        pytest.param(
            flags.UNSTABLE_MIN_EPOCHS,
            kick(flags.UNSTABLE_MIN_EPOCHS),
            0.0,
            True,
            id="a kick in the last of UNSTABLE_MIN_EPOCHS",
        ),
        pytest.param(
            flags.UNSTABLE_MIN_EPOCHS,
            WARM_UP | kick(flags.UNSTABLE_MIN_EPOCHS),
            0.0,
            True,
            id="a kick in the last of UNSTABLE_MIN_EPOCHS after a loud warm-up",
        ),  # the typical window too is read after it
        pytest.param(
            flags.UNSTABLE_MIN_EPOCHS - 1,
            kick(flags.UNSTABLE_MIN_EPOCHS - 1),
            0.0,
            False,
            id="a kick in the last of one epoch fewer",
        ),  # 2 windows after the warm-up: none can be 4x their median
    ],
)
def test_unstable_thresholds(epochs: int, bursts: dict, background: float, unstable: bool) -> None:
    assert [f.name for f in diagnose(oscillating(epochs, bursts, background)).flags] == (
        ["unstable"] if unstable else []
    )


@pytest.mark.parametrize(
    ("fall", "unstable"),
    [(lambda e: 1 + 4 * 0.5 ** (e - 1), False), (lambda e: max(1.0, 5.0 - 1.2 * (e - 1)), False), (None, True)],
    ids=["halving to 1", "a straight fall to 1, then flat", "an oscillation as large"],
)
def test_unstable_is_oscillation_about_the_trend_not_the_trend(fall, unstable: bool) -> None:
    """A healthy G loss falls steeply over its first epochs, then stays flat: its windows in epochs 4-6 have a
    plain std of 0.6-0.8 against a flat median of ~0, and read "unstable at epochs 4-6" before. An
    oscillation of the same size there is one."""
    g = [fall(e) if fall else (1.0 + (0.9 if e % 2 else -0.9) * (4 <= e <= 6)) for e in range(1, 21)]
    assert [f.name for f in diagnose(trial(20, g_loss=g)).flags] == (["unstable"] if unstable else [])


@pytest.mark.parametrize(
    ("distinct", "quality"),
    [(flags.DISTINCT_COLLAPSED, "collapsed"), (flags.DISTINCT_COLLAPSED + 1, "healthy")],
    ids=["DISTINCT_COLLAPSED distinct images", "one more"],
)
def test_a_few_distinct_images_are_a_collapse_however_well_they_cover_the_classes(
    distinct: float, quality: str
) -> None:
    """Healthy in every other measure (10/10 digits, diversity 1): only the count of distinct images tells."""
    diagnosis = diagnose(judged(trial(flags.ONE_LOOK_EPOCHS), {flags.ONE_LOOK_EPOCHS: {"distinct": distinct}}))
    assert diagnosis.evaluations[0].quality == quality
    assert diagnosis.outcome == ("bad" if quality == "collapsed" else "good")  # severe: a collapse at one look


def test_the_distinct_count_of_samples_the_judge_cannot_read_is_not_read() -> None:
    """Unreadable samples have all-zero features (one 'distinct image'): their pixels decide, varied here."""
    samples = {1: UNREADABLE | {"pixel_diversity": 1.0, "distinct": 1.0}}
    assert diagnose(judged(trial(1), samples)).evaluations[0].quality == "poor"


@pytest.mark.parametrize(
    ("confidence", "verdict"),
    [(flags.LOW_CONFIDENCE - 0.01, "too early to tell at epoch 5"), (flags.LOW_CONFIDENCE, "still improving")],
    ids=["illegible: only pixels count", "legible: the judge's figures count"],
)
def test_the_judges_figures_of_samples_it_cannot_read_are_no_progress(confidence: float, verdict: str) -> None:
    """The quickstart's lr 2e-4 batch 256 trial: near-identical dark noise (pixel diversity 0.13-0.14 from
    epoch 3) while the judge's class count on them rose 1 -> 4 at confidence 0.19: "still improving" before."""
    samples = {
        e: COLLAPSED | {"confidence": confidence, "pixel_diversity": p, "modes_covered": m, "fid_mnist": f}
        for e, p, m, f in [
            (1, 0.03, 1, 1376.0),
            (2, 0.10, 1, 1376.0),
            (3, 0.14, 1, 1376.0),
            (4, 0.14, 1, 1376.0),
            (5, 0.13, 4, 1279.0),
        ]
    }
    assert diagnose(judged(trial(5), samples)).verdict.startswith(verdict)


@pytest.mark.parametrize(
    ("epoch", "confidence", "flag"),
    [
        (flags.ONE_LOOK_EPOCHS, flags.LOW_CONFIDENCE - 0.01, "low_quality"),
        (flags.ONE_LOOK_EPOCHS - 1, flags.LOW_CONFIDENCE - 0.01, "too_early"),
        (flags.ONE_LOOK_EPOCHS, flags.LOW_CONFIDENCE, "too_early"),
    ],
    ids=["illegible at ONE_LOOK_EPOCHS", "one epoch earlier", "legible"],
)
def test_varied_samples_the_judge_cannot_read_late_in_a_run_are_low_quality(
    epoch: int, confidence: float, flag: str
) -> None:
    """Pure noise (pixel diversity 1.4) or varied blobs judged once: not a request to train longer that late."""
    samples = {epoch: POOR | {"confidence": confidence, "pixel_diversity": 1.4, "modes_covered": 7}}
    assert flagged(judged(trial(epoch), samples)) == [(flag, epoch, None)]


def stepped(epoch: int, clear: float) -> list[dict]:
    """40 epochs whose D loss falls 1.2 -> 0.4 and G loss rises 1.0 -> 3.0 at ``epoch``, each spell
    alternating about its mean so that the G step is ``clear`` pooled standard deviations."""
    sd = 2.0 / clear
    g = [(1.0 if e < epoch else 3.0) + (sd if e % 2 else -sd) for e in range(1, 41)]
    d = [1.2 if e < epoch else 0.4 for e in range(1, 41)]
    return trial(40, d_loss=d, g_loss=g)


@pytest.mark.parametrize(
    ("clear", "onset"), [(flags.REGIME_CLEAR * 1.05, 11), (flags.REGIME_CLEAR * 0.95, 40)], ids=["clear", "not clear"]
)
def test_a_collapse_seen_once_is_dated_by_one_clear_change_in_the_losses(clear: float, onset: int) -> None:
    """Three classes at the only evaluation (epoch 40) after a history whose D loss drops and G loss jumps at
    epoch 11: "mode collapse at epoch 40 (onset unknown)" before."""
    diagnosis = diagnose(judged(stepped(11, clear), {40: {"modes_covered": 3, "confidence": 0.95}}))
    assert flagged_of(diagnosis) == [("mode_collapse", onset, None)]
    assert ("dated by the losses: from epoch 11" in diagnosis.verdict) == (onset == 11)


def test_a_straight_ramp_in_the_losses_is_no_change_of_regime() -> None:
    """However steep: its best split lies sqrt(12) = 3.46 standard deviations apart."""
    ramp = trial(40, d_loss=[1.2 - 0.02 * e for e in range(40)], g_loss=[1.0 + 0.2 * e for e in range(40)])
    assert flags.regime_change(ramp) is None
