from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gansweep.cli import main


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_history_only_json(tmp_path: Path, capsys) -> None:
    rows = ["epoch,d_loss,g_loss,d_real,d_fake", "1,1.1,1.5,0.6,0.35", "2,0.6,3.0,0.8,0.12", "3,0.2,6.0,0.9,0.06"]
    rows += [f"{e},0.0,{45 + e % 5},1.0,0.0" for e in range(4, 41)]
    assert main(["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows)), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "D-loss collapse at epoch 4"
    assert result["flags"][0]["name"] == "d_collapse" and result["flags"][0]["epoch"] == 4
    assert result["metrics"] == {}


def test_history_with_samples_of_one_repeated_digit(tmp_path: Path, digits, capsys) -> None:
    rows = ["epoch,d_loss,g_loss"] + [f"{e},1.1,1.2" for e in range(1, 6)]
    rng = np.random.default_rng(0)
    one = digits.heldout_images[0].numpy().astype(np.float32) / 127.5 - 1
    samples = np.clip(one[None] + rng.normal(0, 0.06, (500, 1, 28, 28)), -1, 1).astype(np.float32)
    np.save(tmp_path / "s.npy", samples)
    code = main(["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows)), "--samples", str(tmp_path / "s.npy"), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in result["flags"]] == ["mode_collapse"] and result["metrics"]["modes_covered"] == 1


@pytest.mark.parametrize(
    ("rows", "samples", "message"),
    [
        (["epoch,d_loss"], None, "missing column 'g_loss'; needs epoch, d_loss, g_loss"),
        (["epoch,d_loss,g_loss", "1,nan,nan", "2,nan,nan"], None, "every d_loss and g_loss is NaN"),
        (["epoch,d_loss,g_loss", "1,0.5,abc"], None, "h.csv:2: not a number"),
        (["epoch,d_loss,g_loss"], None, "no rows after the header"),
        (["epoch,d_loss,g_loss", "1,1,1"], np.zeros((20, 3, 28, 28), np.float32), "expected shape (N, 1, 28, 28)"),
        (["epoch,d_loss,g_loss", "1,1,1"], np.full((20, 28, 28), 5, np.float32), "values must lie in [-1, 1]"),
        (["epoch,d_loss,g_loss", "1,1,1"], np.zeros((20, 28, 28), np.int64), "expected finite float values"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path: Path, capsys, rows, samples, message: str) -> None:
    argv = ["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows))]
    if samples is not None:
        np.save(tmp_path / "s.npy", samples)
        argv += ["--samples", str(tmp_path / "s.npy")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_diagnose_needs_a_run_or_a_history(capsys) -> None:
    assert main(["diagnose"]) == 2
    assert "give either a RUN_ID or --history" in capsys.readouterr().err
