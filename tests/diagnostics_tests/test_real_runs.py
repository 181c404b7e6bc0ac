"""The verdict against real training runs: what a person sees in each run's sample grids.

The runs (``real_runs/``, made by ``scripts/regression_runs.py`` on a 2-core CPU) keep their losses and the
samples of every evaluation; the metrics are recomputed here with the current judge, so a change to the
judge, the metrics or the flags that changes a verdict fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gansweep.diagnostics import diagnose
from gansweep.diagnostics.evaluate import EVAL_SAMPLES, evaluated
from gansweep.diagnostics.flags import hopeless

from .conftest import FOLDER, RUNS

CHECKS = [(name, check) for name, run in RUNS.items() for check in run["checks"]]


@pytest.mark.parametrize(("name", "check"), CHECKS, ids=[f"{name}@{check['epochs']}" for name, check in CHECKS])
def test_the_verdict_says_what_the_grids_show(histories, name: str, check: dict) -> None:
    diagnosis = diagnose(histories[name][: check["epochs"]])
    lasting = [f.name for f in diagnosis.flags if f.end is None]
    recovered = [f.name for f in diagnosis.flags if f.end is not None]
    seen = (name, check["sees"], diagnosis.verdict)
    assert (sorted(lasting), sorted(recovered), diagnosis.outcome) == (
        sorted(check["lasting"]),
        sorted(check["recovered"]),
        check["outcome"],
    ), seen


def test_the_runs_are_what_the_evaluator_judges_and_fit_in_6_mb() -> None:
    """6 MB: 4.3 MB for the first 13 runs, 0.76 MB for the quickstart's own lr 2e-4 batch 256 trial (noise
    textures compress badly); the budget keeps a clone small, not one run out."""
    for name, run in RUNS.items():
        stored = np.load(FOLDER / f"{name}.npz")
        history = json.loads(str(stored["history"]))
        assert len(history) == run["epochs"]
        schedule = [e for e in range(1, run["epochs"] + 1) if evaluated(e, run["eval_every"], run["epochs"])]
        assert stored["epochs"].tolist() == schedule
        assert (
            stored["samples"].shape == (len(schedule), EVAL_SAMPLES, 1, 28, 28) and stored["samples"].dtype == np.uint8
        )
        for check in run["checks"]:
            assert check["epochs"] in schedule and check["sees"]  # a prefix ends on an evaluation
    assert sum(p.stat().st_size for p in FOLDER.glob("*.npz")) <= 6e6


def test_early_stop_auto_stops_only_runs_that_end_bad(histories) -> None:
    """``flags.hopeless`` (what ``early_stop: auto`` stops on), epoch by epoch through each real run: it
    fires only in the runs whose full verdict is bad, and the verdict at that epoch is bad already."""
    first = {}
    for name, history in histories.items():
        at = [n for n in range(1, len(history) + 1) if hopeless(diagnose(history[:n]))]
        if at:
            first[name] = at[0]
            assert diagnose(history[: at[0]]).outcome == diagnose(history).outcome == "bad", name
    assert first == {"d_collapse": 12, "mode_collapse": 21, "recovered": 14}


OUTCOMES = ("bad", "unclear", "good")


def confusion(histories: dict[str, list[dict]]) -> dict[tuple[str, str], int]:
    """(truth from the run's own grids, the verdict's outcome) -> checks, over every check of the set."""
    cells = dict.fromkeys(((t, v) for t in OUTCOMES for v in OUTCOMES), 0)
    for name, check in CHECKS:
        cells[check["outcome"], diagnose(histories[name][: check["epochs"]]).outcome] += 1
    return cells


def test_the_confusion_matrix_is_diagonal_and_the_readme_shows_it(histories) -> None:
    cells = confusion(histories)
    assert {cell: n for cell, n in cells.items() if cell[0] != cell[1] and n} == {}
    rows = [f"| {t} | " + " | ".join(str(cells[t, v]) for v in OUTCOMES) + " |" for t in OUTCOMES]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "\n".join(["| grids show \\ verdict | bad | unclear | good |", "|---|---|---|---|", *rows]) in readme
