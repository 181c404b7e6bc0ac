"""A sweep's progress where no terminal draws bars (piped to a file, a CI log): a line per epoch of each
trial, and one when an epoch has been silent for PIPED_EVERY seconds."""

from __future__ import annotations

import io

from rich.console import Console

from gansweep import progress
from gansweep.progress import SweepProgress

RECORD = {"epoch": 2, "d_loss": 0.5, "g_loss": 2.0, "d_real": 0.8, "d_fake": 0.3, "images_per_s": 900.0}


def _piped() -> tuple[SweepProgress, io.StringIO]:
    out = io.StringIO()
    return SweepProgress(Console(file=out, force_terminal=False, width=200)), out


def test_piped_output_has_a_line_per_epoch_and_the_trials_end() -> None:
    shown, out = _piped()
    with shown:
        shown(("sweep", {"total": 1, "done": 0}))
        shown(("start", {"key": "k", "total": 10, "done": 0, "label": "dcgan28 lr=0.005", "epochs": 5}))
        shown(("step", {"key": "k"}))
        shown(("epoch", {"key": "k", "record": {**RECORD, "fid_mnist": 812.4, "readable": 1.0}}))
        shown(("epoch", {"key": "k", "record": {**RECORD, "epoch": 3, "fid_mnist": 1376.3, "readable": 0.0}}))
        shown(("end", {"key": "k", "state": "complete", "verdict": "good"}))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  dcgan28 lr=0.005  epoch 2/5  D 0.5000  G 2.0000") and lines[0].endswith(
        "fid_mnist 812"
    )
    assert lines[1].startswith("  dcgan28 lr=0.005  epoch 3/5") and lines[1].endswith("samples unreadable")
    assert lines[2].startswith("COMPLETE    dcgan28 lr=0.005  good")


def test_a_long_epoch_says_how_far_it_got(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    shown, out = _piped()
    shown(("start", {"key": "k", "total": 100, "done": 0, "label": "mlp", "epochs": 1}))
    for now[0] in (10.0, 31.0, 40.0):  # at 10 s nothing, at 31 s a line, at 40 s nothing again
        shown(("step", {"key": "k"}))
    assert out.getvalue().splitlines() == ["  mlp  step 2/100"]


def test_a_terminal_gets_bars_not_lines() -> None:
    out = io.StringIO()
    shown = SweepProgress(Console(file=out, force_terminal=True, width=200))
    shown(("start", {"key": "k", "total": 10, "done": 0, "label": "mlp", "epochs": 5}))
    shown(("epoch", {"key": "k", "record": RECORD}))
    assert "epoch 2/5" not in out.getvalue()


def test_a_trials_end_says_its_digits_only_where_the_judge_could_read_them() -> None:
    """Near-copies at judge confidence 0.19 were counted 4/10 digits, which read as progress."""
    base = {"fid_mnist": 420.0, "readable": 0.9, "modes_covered": 4, "confidence": 0.19, "distinct": 3.0}
    assert progress.final_words(base) == "fid_mnist 420, no legible digits (judge confidence 0.19)"
    assert progress.final_words(base | {"readable": 0.0}) == "samples unreadable"
    legible = base | {"confidence": 0.9, "modes_covered": 10, "distinct": 1000.0}
    assert progress.final_words(legible) == "fid_mnist 420, 10/10 digits, 1000+ distinct"
