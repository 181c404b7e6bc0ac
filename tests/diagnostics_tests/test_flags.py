"""Both sides of every threshold in gansweep/diagnostics/flags.py."""

from __future__ import annotations

import math

import pytest

from gansweep.diagnostics import diagnose, sample_metrics


def _history(d_loss, g_loss, d_fake=None) -> list[dict]:
    d_fake = d_fake or [0.3] * len(d_loss)
    return [{"epoch": i + 1, "d_loss": d, "g_loss": g, "d_real": 0.7, "d_fake": f}
            for i, (d, g, f) in enumerate(zip(d_loss, g_loss, d_fake))]  # fmt: skip


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


def test_d_collapse_needs_sustained_epochs_and_a_low_d_loss() -> None:
    two_epochs = _history([1.0] * 3 + [0.01] * 2 + [1.0] * 5, [1.0] * 3 + [5.0] * 2 + [1.0] * 5,
                          [0.3] * 3 + [0.01] * 2 + [0.3] * 5)  # fmt: skip
    assert "d_collapse" not in _names(two_epochs)  # two epochs mid-run: a dip, not a collapse
    three = _history([1.0] * 3 + [0.01] * 3 + [1.0] * 4, [1.0] * 3 + [5.0] * 3 + [1.0] * 4,
                     [0.3] * 3 + [0.01] * 3 + [0.3] * 4)  # fmt: skip
    assert "d_collapse" in _names(three)
    at_the_end = _history([1.0, 1.0, 0.01, 0.01], [1.0, 1.0, 5.0, 5.0], [0.3, 0.3, 0.01, 0.01])
    assert "d_collapse" in _names(at_the_end)  # a short trial that ends collapsed
    d_not_low = _history([0.3] * 6, [5.0] * 6, [0.01] * 6)
    assert "d_collapse" not in _names(d_not_low)  # mean D loss 0.3 > 0.1: D is not winning outright
    fake_not_low = _history([0.05] * 6, [5.0] * 6, [0.06] * 6)
    assert "d_collapse" not in _names(fake_not_low)  # D(G(z)) 0.06 is above 0.05
    g_low_flat = _history([0.05] * 6, [2.0] * 6, [0.01] * 6)
    assert "d_collapse" not in _names(g_low_flat)  # G loss neither high nor rising
    g_rising = _history([0.05] * 6, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], [0.01] * 6)
    assert "d_collapse" in _names(g_rising)


def test_diverged_names_the_first_non_finite_epoch() -> None:
    history = _history([1.0, 1.0, float("nan")], [1.0, float("inf"), float("nan")])
    flag = diagnose(history).flags[0]
    assert (flag.name, flag.epoch) == ("diverged", 2)
    assert "diverged" not in _names(report_000_smooth())


def test_unstable_window_after_settling_on_both_sides() -> None:
    calm = report_000_smooth()
    for i, bump in zip(range(17, 22), [3.0, 0.5, 3.5, 0.4, 3.0]):  # 000: "suddenly unstable at 17-27 epochs"
        calm[i - 1]["g_loss"] = bump
    flag = next(f for f in diagnose(calm).flags if f.name == "unstable")
    assert 15 <= flag.epoch <= 17
    small = report_000_smooth()
    for i in range(17, 22):
        small[i - 1]["g_loss"] += 0.3 if i % 2 else -0.3  # std ~0.3 < 0.5: not "large"
    assert "unstable" not in _names(small)


def _with_metrics(history: list[dict], epoch: int, metrics: dict) -> list[dict]:
    history[epoch - 1].update(metrics)
    return history


@pytest.mark.parametrize(
    ("name", "flag"),
    [("all ten", None), ("blurred", None), ("eight classes", None),
     ("one class", "mode_collapse"), ("three classes", "mode_collapse"), ("repeated", "mode_collapse"),
     ("uniform noise", "low_quality")],
)  # fmt: skip
def test_sample_sets_from_real_digits(judge, digits, sample_sets, name: str, flag: str | None) -> None:
    metrics = sample_metrics(judge, sample_sets[name], digits.heldout_images)
    history = _with_metrics(report_000_smooth()[:10], 10, metrics)
    names = _names(history)
    assert names == ([flag] if flag else []), (name, metrics, names)


def test_mode_collapse_is_dated_by_the_g_loss_spike(judge, digits, sample_sets) -> None:
    """000 §1 (2e-4, 512, 64): fine to epoch 10, G-loss spike at 11, collapsed by 40."""
    healthy = sample_metrics(judge, sample_sets["all ten"], digits.heldout_images)
    collapsed = sample_metrics(judge, sample_sets["three classes"], digits.heldout_images)
    g = [2.0] * 10 + [6.0] + [4.0] * 29
    d = [1.0] * 9 + [0.3] + [0.2] * 30
    history = _history(d, g)
    for epoch in (5, 10):
        history[epoch - 1].update(healthy)
    for epoch in (15, 20, 25, 30, 35, 40):
        history[epoch - 1].update(collapsed)
    flag = next(f for f in diagnose(history).flags if f.name == "mode_collapse")
    assert flag.epoch == 11 and "spike at epoch 11" in flag.evidence
    assert diagnose(history).verdict.startswith("mode collapse from epoch 11 (3/10 digits)")
