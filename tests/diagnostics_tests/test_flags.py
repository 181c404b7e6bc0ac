"""The flags on whole histories: report 000's shapes, real digits arranged as it describes them, and
hand-made records. Both sides of each threshold, rule by rule, are in ``test_thresholds.py``."""

from __future__ import annotations

import math

import pytest

from gansweep.diagnostics import diagnose, flags, sample_metrics


def _history(d_loss, g_loss, d_fake=None) -> list[dict]:
    d_fake = d_fake or [0.3] * len(d_loss)
    return [
        {"epoch": i + 1, "d_loss": d, "g_loss": g, "d_real": 0.7, "d_fake": f}
        for i, (d, g, f) in enumerate(zip(d_loss, g_loss, d_fake))
    ]


def _names(history) -> list[str]:
    return [f.name for f in diagnose(history).flags]


def report_000_default() -> list[dict]:
    """000 §1 default DCGAN64: D loss 0.0000 from epoch 4, G loss climbing to ~50."""
    d = [1.1, 0.6, 0.2] + [0.0] * 37
    g = [1.5, 3.0, 6.0] + [45.0 + (i % 5) for i in range(37)]
    fake = [0.35, 0.12, 0.06] + [0.0] * 37
    return _history(d, g, fake)


def report_000_smooth() -> list[dict]:
    """000 §2's dcgan28: G loss falls fast for ~5 epochs, then both losses are very stable."""
    g = [4.0, 3.0, 2.2, 1.6, 1.3] + [1.2 + 0.03 * math.sin(i) for i in range(35)]
    d = [0.6, 0.8, 0.9, 1.0, 1.05] + [1.1 + 0.02 * math.cos(i) for i in range(35)]
    return _history(d, g)


def test_report_000_default_is_d_collapse_at_epoch_4() -> None:
    diagnosis = diagnose(report_000_default())
    assert [(f.name, f.epoch) for f in diagnosis.flags] == [("d_collapse", 4)]
    assert diagnosis.verdict == "D-loss collapse at epoch 4"


def test_report_000_smooth_history_has_no_flag() -> None:
    assert diagnose(report_000_smooth()).verdict == "good"


def test_diverged_names_the_first_non_finite_epoch() -> None:
    history = _history([1.0, 1.0, float("nan")], [1.0, float("inf"), float("nan")])
    flag = diagnose(history).flags[0]
    assert (flag.name, flag.epoch) == ("diverged", 2)
    assert "diverged" not in _names(report_000_smooth())


def test_unstable_window_after_settling_on_both_sides() -> None:
    calm = report_000_smooth()
    for i, bump in zip(range(17, 22), [3.0, 0.5, 3.5, 0.4, 3.0]):  # 000: "suddenly unstable at 17-27 epochs"
        calm[i - 1]["g_loss"] = bump
    diagnosis = diagnose(calm)
    flag = next(f for f in diagnosis.flags if f.name == "unstable")
    assert 15 <= flag.epoch <= 17 and flag.end is not None and flag.end <= 24  # 000: "... then stable"
    assert diagnosis.verdict.startswith("good; unstable at epochs") and "(recovered by epoch" in diagnosis.verdict
    to_the_end = report_000_smooth()
    for i, bump in zip(range(36, 41), [3.0, 0.5, 3.5, 0.4, 3.0]):
        to_the_end[i - 1]["g_loss"] = bump
    lasting = next(f for f in diagnose(to_the_end).flags if f.name == "unstable")
    assert lasting.end is None and diagnose(to_the_end).outcome == "bad"
    small = report_000_smooth()
    for i in range(17, 22):
        small[i - 1]["g_loss"] += 0.3 if i % 2 else -0.3  # std ~0.3 < 0.5: not "large"
    assert "unstable" not in _names(small)


def _evaluated(history: list[dict], metrics: dict[int, dict]) -> list[dict]:
    for epoch, m in metrics.items():
        history[epoch - 1].update(m)
    return history


def _m(
    fid: float, diversity: float = 0.2, modes: int = 2, confidence: float = 0.8, pixels: float | None = None
) -> dict:
    """Sample metrics as ``sample_metrics`` returns them (class_kl and mnist_score are not read by the flags)."""
    return {
        "modes_covered": modes,
        "class_kl": 0.5,
        "fid_mnist": fid,
        "mnist_score": 2.0,
        "diversity": diversity,
        "confidence": confidence,
        "pixel_diversity": diversity if pixels is None else pixels,
    }


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("all ten", None),
        ("blurred", None),
        ("eight classes", None),
        ("one class", "mode_collapse"),
        ("three classes", "mode_collapse"),
        ("repeated", "mode_collapse"),
        ("uniform noise", "low_quality"),
    ],
)
def test_sample_sets_from_real_digits_stuck_for_long_enough(
    judge, digits, sample_sets, name: str, flag: str | None
) -> None:
    """The same samples at every evaluation from epoch 3 to 14: no trend; collapsed ones stuck for
    COLLAPSE_EPOCHS (11), poor ones for more than STUCK_EPOCHS (8)."""
    metrics = sample_metrics(judge, sample_sets[name], digits.heldout_images)
    end = 3 + flags.COLLAPSE_EPOCHS
    history = _evaluated(report_000_smooth()[:end], {e: metrics for e in range(3, end + 1)})
    names = _names(history)
    assert names == ([flag] if flag else []), (name, metrics, names)


@pytest.mark.parametrize("name", ["one class", "three classes", "repeated", "uniform noise"])
def test_one_evaluation_is_too_early_to_tell(judge, digits, sample_sets, name: str) -> None:
    history = _evaluated(report_000_smooth()[:5], {5: sample_metrics(judge, sample_sets[name], digits.heldout_images)})
    diagnosis = diagnose(history)
    assert _names(history) == ["too_early"] and diagnosis.verdict == "too early to tell at epoch 5"
    assert diagnosis.outcome == "unclear"


def test_a_one_epoch_blob_is_too_early_not_a_collapse() -> None:
    history = _evaluated(report_000_smooth()[:1], {1: _m(1314, 0.0, 1, 0.10, pixels=0.04)})
    assert diagnose(history).verdict == "too early to tell at epoch 1"


def test_a_stall_shorter_than_collapse_epochs_is_too_early_and_that_long_is_stuck() -> None:
    """Collapsed samples getting more varied to epoch 4 (diversity 0.05 -> 0.2), then flat: ten epochs
    without a new best in variety (to 14) are too early, eleven (to 15) a mode collapse, dated from it."""
    improving = {e: _m(1300 - 60 * e, 0.05 * e) for e in (1, 2, 3, 4)}
    flat = {e: _m(1060, 0.2) for e in range(5, 16)}
    ten = _evaluated(report_000_smooth()[:14], {**improving, **{e: m for e, m in flat.items() if e <= 14}})
    assert _names(ten) == ["too_early"] and "no more varied since epoch 4" in diagnose(ten).flags[0].evidence
    eleven = _evaluated(report_000_smooth()[:15], {**improving, **flat})
    flag = diagnose(eleven).flags[0]
    assert (flag.name, flag.epoch, flag.end) == ("mode_collapse", 4, None)
    assert diagnose(eleven).verdict == "mode collapse from epoch 4 (2/10 digits)"


def test_collapsed_samples_that_only_draw_their_digit_better_are_stuck() -> None:
    """The issue's cs231n-mlp: one digit at all 15 evaluations (diversity 0.04, pixels 0.15), fid_mnist
    setting small new bests to the end. A better drawing of one digit is one digit: a mode collapse."""
    fid = [1300 - 20 * e for e in range(15)]
    history = _evaluated(report_000_smooth()[:15], {e + 1: _m(f, 0.04, 1, pixels=0.15) for e, f in enumerate(fid)})
    diagnosis = diagnose(history)
    assert any(e.record for e in diagnosis.evaluations[-4:]) and not any(e.variety for e in diagnosis.evaluations)
    assert diagnosis.verdict == "mode collapse from epoch 1 (1/10 digits)" and diagnosis.outcome == "bad"


def test_a_new_best_in_variety_must_hold_at_the_next_evaluation() -> None:
    """Near-copies whose diversity wobbles 0.03 -> 0.06 -> 0.045 (an mlp at lr 2e-4, batch 512): no new
    best, so no break in the stall; one that holds is one, and so is one at the last evaluation."""
    wobble = {e: _m(1250, 0.03, 1, pixels=0.1) for e in range(1, 16)} | {8: _m(1250, 0.06, 1, pixels=0.1)}
    one_blob = diagnose(_evaluated(report_000_smooth()[:15], wobble))
    assert not any(e.variety for e in one_blob.evaluations) and one_blob.outcome == "bad"
    held = wobble | {9: _m(1250, 0.065, 1, pixels=0.1)}
    assert [e.epoch for e in diagnose(_evaluated(report_000_smooth()[:15], held)).evaluations if e.variety] == [8]
    last = {e: m for e, m in wobble.items() if e < 8}
    assert diagnose(_evaluated(report_000_smooth()[:8], last | {8: wobble[8]})).evaluations[-1].variety


def test_improving_again_without_a_new_best_is_stuck() -> None:
    """Collapsed samples that got worse and climb back towards an earlier best (mode hopping, as an mlp
    at lr 2e-3 did after a D-loss collapse): improving over the window, but stuck."""
    fid = [1000, 1000, 1100, 1200, 1300, 1300, 1300, 1250, 1200, 1150, 1100, 1050, 1020]
    history = _evaluated(report_000_smooth()[:13], {e + 1: _m(f, 0.2) for e, f in enumerate(fid)})
    diagnosis = diagnose(history)
    assert diagnosis.evaluations[-1].trend == "improving" and _names(history) == ["mode_collapse"]


def test_collapsed_but_improving_is_under_trained_never_mode_collapse() -> None:
    """The issue's cs231n-mlp at 15 epochs: 2/10 digits, fid_mnist falling 1210 -> 993 with +-60 wobble."""
    fid = [1314, 1314, 1290, 1204, 1211, 1152, 1153, 1146, 1234, 1104, 1121, 1110, 1063, 1042, 993]
    diversity = [0.0, 0.0, 0.02, 0.04, 0.03, 0.04, 0.03, 0.05, 0.04, 0.06, 0.11, 0.08, 0.15, 0.14, 0.19]
    history = _evaluated(report_000_smooth()[:15], {e + 1: _m(f, d) for e, (f, d) in enumerate(zip(fid, diversity))})
    diagnosis = diagnose(history)
    assert _names(history) == ["under_trained"] and diagnosis.verdict == "still improving at epoch 15 — train longer"
    assert diagnosis.evaluations[-1].trend == "improving" and diagnosis.outcome == "unclear"


def test_a_slope_within_the_trials_own_scatter_is_flat() -> None:
    """Over 4+ evaluations (the last half of 8) the slope must also be 2 standard errors from zero: a
    zig-zag of +-100 whose last four values fall by 180 along their fit is no trend (t = 1.2)."""
    fid = [1200, 1000, 1250, 1050, 1200, 1000, 1150, 950]
    history = _evaluated(report_000_smooth()[:8], {e + 1: _m(f) for e, f in enumerate(fid)})
    assert diagnose(history).evaluations[-1].trends["fid_mnist"] == "flat"
    steady = _evaluated(report_000_smooth()[:8], {e + 1: _m(1200 - 50 * e) for e in range(8)})
    assert diagnose(steady).evaluations[-1].trends["fid_mnist"] == "improving"


def test_mode_collapse_is_dated_by_the_g_loss_spike(judge, digits, sample_sets) -> None:
    """000 §1 (2e-4, 512, 64): fine to epoch 10, G-loss spike at 11, collapsed by 40."""
    healthy = sample_metrics(judge, sample_sets["all ten"], digits.heldout_images)
    collapsed = sample_metrics(judge, sample_sets["three classes"], digits.heldout_images)
    g = [2.0] * 10 + [6.0] + [4.0] * 29
    d = [1.0] * 9 + [0.3] + [0.2] * 30
    history = _evaluated(
        _history(d, g), {**{e: healthy for e in (5, 10)}, **{e: collapsed for e in (15, 20, 25, 30, 35, 40)}}
    )
    flag = next(f for f in diagnose(history).flags if f.name == "mode_collapse")
    assert flag.epoch == 11 and "spike at epoch 11" in flag.evidence
    assert diagnose(history).verdict.startswith("mode collapse from epoch 11 (3/10 digits)")


def test_a_drop_after_healthy_samples_is_a_collapse_at_once_and_a_recovery_ends_it(judge, digits, sample_sets) -> None:
    healthy = sample_metrics(judge, sample_sets["all ten"], digits.heldout_images)
    collapsed = sample_metrics(judge, sample_sets["one class"], digits.heldout_images)
    dropped = _evaluated(report_000_smooth()[:12], {**{e: healthy for e in range(1, 11)}, 11: collapsed, 12: collapsed})
    assert [(f.name, f.epoch, f.end) for f in diagnose(dropped).flags] == [("mode_collapse", 11, None)]
    seven = healthy | {"modes_covered": 7}
    blip = _evaluated(
        report_000_smooth()[:11], {**{e: seven for e in range(1, 11)}, 11: healthy | {"modes_covered": 6}}
    )
    assert _names(blip) == ["too_early"]  # one evaluation one digit lower, within noise: not yet a drop
    recovered = _evaluated(
        report_000_smooth()[:14],
        {**{e: healthy for e in range(1, 11)}, 11: collapsed, 12: collapsed, 13: healthy, 14: healthy},
    )
    diagnosis = diagnose(recovered)
    assert [(f.name, f.epoch, f.end) for f in diagnosis.flags] == [("mode_collapse", 11, 13)]
    assert diagnosis.verdict == "good; mode collapse from epoch 11 (1/10 digits) (recovered by epoch 13)"
    assert diagnosis.outcome == "good"


def test_early_mode_dropping_that_goes_away_is_not_a_collapse() -> None:
    """Report 000 §3: at first only 1-like shapes, gradually other digits."""
    metrics = {e: _m(1250 - 70 * e, 0.05 + 0.06 * e, min(10, 1 + e)) for e in range(1, 13)}
    history = _evaluated(report_000_smooth()[:12], metrics)
    assert diagnose(history).verdict == "good"


def test_a_d_collapse_that_ends_is_recovered() -> None:
    d = [1.0] * 3 + [0.01] * 4 + [1.0] * 5
    g = [1.0] * 3 + [1.1, 1.2, 1.3, 1.4] + [1.0] * 5  # rising while D wins
    fake = [0.3] * 3 + [0.01] * 4 + [0.3] * 5
    diagnosis = diagnose(_history(d, g, fake))
    assert [(f.name, f.epoch, f.end) for f in diagnosis.flags] == [("d_collapse", 4, 8)]
    assert diagnosis.verdict == "good; D-loss collapse at epoch 4 (recovered by epoch 8)"


def test_d_collapse_reads_the_median_d_loss_of_its_window() -> None:
    """mlp lr 5e-3 on mnist-5k: D loss 1.39 in the window's first epoch, then <= 0.01."""
    d = [2.0, 1.39] + [0.01] * 8
    g = [2.0] + [100.0] * 9
    fake = [0.3, 0.04] + [0.0] * 8
    assert [(f.name, f.epoch) for f in diagnose(_history(d, g, fake)).flags] == [("d_collapse", 2)]


def test_a_steady_climb_below_the_noise_each_epoch_is_under_trained_not_stuck() -> None:
    """Poor samples of 8 digits, fid_mnist falling 25 an epoch from 1275 to 700 (the noise margin at ~1200
    is 2√2 × 23 = 65): a new best every 2-3 epochs. (Collapsed samples are held to their variety instead:
    see test_collapsed_samples_that_only_draw_their_digit_better_are_stuck.)"""
    history = _evaluated(report_000_smooth()[:24], {e: _m(1300 - 25 * e, 0.6, 8) for e in range(1, 25)})
    assert _names(history) == ["under_trained"]
    assert [e.epoch for e in diagnose(history).evaluations if e.record][:3] == [4, 7, 10]


def test_one_unreadable_wobble_does_not_end_a_collapse(judge, digits, sample_sets) -> None:
    """Near-identical garbage whose pixel diversity crosses 0.2 once (collapsed -> poor -> collapsed)."""
    healthy = sample_metrics(judge, sample_sets["all ten"], digits.heldout_images)
    garbage = _m(1314, 0.0, 1, 0.1, pixels=0.19)
    metrics = {
        **{e: healthy for e in range(1, 6)},
        **{e: garbage for e in range(6, 11)},
        11: garbage | {"pixel_diversity": 0.21},
        12: garbage,
    }
    flag = diagnose(_evaluated(report_000_smooth()[:12], metrics)).flags[0]
    assert (flag.name, flag.epoch, flag.end) == ("mode_collapse", 6, None)
    ending_on_the_wobble = diagnose(_evaluated(report_000_smooth()[:11], {e: m for e, m in metrics.items() if e <= 11}))
    assert ending_on_the_wobble.outcome == "bad" and [(f.name, f.end) for f in ending_on_the_wobble.flags] == [
        ("mode_collapse", None)
    ]


def test_divergence_does_not_end_a_d_collapse() -> None:
    history = _history(
        [1.0] * 3 + [0.0] * 6 + [math.nan], [1.0] * 3 + [50.0] * 6 + [math.nan], [0.4] * 3 + [0.0] * 6 + [math.nan]
    )
    assert [(f.name, f.epoch, f.end) for f in diagnose(history).flags] == [
        ("diverged", 10, None),
        ("d_collapse", 4, None),
    ]


def test_partial_or_repeated_records_do_not_crash() -> None:
    """What a hand-made history CSV can hold: a row without d_fake, an evaluation missing metrics, a
    repeated epoch."""
    history = _history([1.0] * 4, [1.0] * 4)
    del history[1]["d_fake"]
    history[2].update({"modes_covered": 3, "fid_mnist": 900.0})
    assert diagnose(history).verdict == "good"
    repeated = [history[0] | _m(1000)] * 3
    assert diagnose(repeated).verdict == "too early to tell at epoch 1"
