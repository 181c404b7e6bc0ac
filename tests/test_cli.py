from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gansweep.cli import main
from gansweep.models import MODELS
from gansweep.progress import EpochProgress
from gansweep.trainer import STEP_METRICS
from tests.test_bad_input import GRID, recorded  # noqa: F401  (the store fixture, by name)

HEAVY = {"dcgan64", "infogan64", "infogan28"}
"""More than ~10 s for one mnist-5k epoch on a 2-core CPU (infogan64: 71-95 s): they train one epoch of a
1,000-digit stand-in for MNIST instead, the same code on a fifth of the images."""


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in HEAVY else m for m in MODELS])
def test_every_model_trains_one_epoch(model: str, tmp_path: Path, capsys, write_idx) -> None:
    extra = ["--width", "32"] if model in {"dcgan28", "dcgan64"} else []
    data = ["--dataset", "mnist-5k"]
    if model in HEAVY:
        write_idx(tmp_path / "data" / "MNIST" / "raw", n_train=1000, n_test=100)
        data = ["--dataset", "mnist", "--data-dir", str(tmp_path / "data")]
    code = main(
        [
            "train",
            "--model",
            model,
            *data,
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--json",
            *extra,
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == model and len(result["epochs"]) == 1 and result["stopped"] is None
    size = MODELS[model].image_size
    assert np.load(tmp_path / "samples.npy").shape == (2, 100, 1, size, size)
    assert (tmp_path / "checkpoint.pt").exists()


def test_train_prints_epoch_losses_and_resumes_an_interrupted_trial(tmp_path: Path, capsys, monkeypatch) -> None:
    args = ["train", "--model", "cs231n-mlp", "--batch-size", "500", "--epochs", "2", "--device", "cpu", "--json"]
    assert main(args) == 0
    straight = capsys.readouterr()
    assert "epoch   1  D " in straight.err and "epoch   2  D " in straight.err

    def ctrl_c_after_epoch_1(progress, trainer, record):
        raise KeyboardInterrupt

    monkeypatch.setattr(EpochProgress, "on_epoch", ctrl_c_after_epoch_1)
    assert main([*args, "--out", str(tmp_path / "t0")]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main([*args, "--resume", str(tmp_path / "t0" / "checkpoint.pt"), "--out", str(tmp_path / "t1")]) == 0
    resumed = capsys.readouterr()
    assert "epoch   1  D " not in resumed.err and "epoch   2  D " in resumed.err  # only the missing epoch trains

    def losses(output: str) -> tuple[list, list]:
        history = json.loads(output)
        return history["steps"], [[r["epoch"], *(r[k] for k in STEP_METRICS)] for r in history["epochs"]]

    assert losses(resumed.out) == losses(straight.out)  # the same as uninterrupted, epochs numbered on
    # a finished trial's checkpoint resumes to its end: nothing left to train
    assert main([*args, "--resume", str(tmp_path / "t1" / "checkpoint.pt")]) == 0
    finished = capsys.readouterr()
    assert "epoch " not in finished.err and losses(finished.out) == losses(straight.out)
    # more epochs make another trial: its checkpoint is refused, not extended
    assert main([*args, "--epochs", "3", "--resume", str(tmp_path / "t1" / "checkpoint.pt")]) == 2
    assert "is for" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", "nope"], "--model: unknown model 'nope'"),
        (["train", "--model", "mlp", "--width", "8"], "model 'mlp' does not take hyperparameter 'width'"),
        (["train", "--model", "mlp", "--lr", "0"], "lr must be > 0"),
        (["train", "--model", "mlp", "--batch-size", "100000"], "batch_size must be at most 4500"),
        (["train", "--model", "mlp", "--loss", "hinge"], "loss must be one of: bce, minimax, lsgan"),
        (["run", "does-not-exist.yaml"], "does-not-exist.yaml: cannot read"),
        (
            ["run", "sweeps/quickstart.yaml", "--heartbeat", "0"],
            "--heartbeat must be a whole number from 1 to 3600, got 0",
        ),
        (["run", "sweeps/quickstart.yaml", "--workers", "0"], "--workers must be a whole number >= 1 or auto, got 0"),
        (["status", "does-not-exist.yaml"], "does-not-exist.yaml: cannot read"),
        (["status", "sweeps/nope"], "sweeps/nope: cannot read"),  # a path, not a name
        (["status", "no-such-sweep", "--store", "/nonexistent"], "no sweep named 'no-such-sweep' in /nonexistent"),
        (["report", "no-such-sweep", "--store", "/nonexistent"], "no sweep named 'no-such-sweep' in /nonexistent"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_workers_takes_a_number_or_auto(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "sweeps/quickstart.yaml", "--workers", "many"])
    assert exited.value.code == 2
    assert "argument --workers: give a number of workers or auto, got 'many'" in capsys.readouterr().err


def test_list_models_json(capsys) -> None:
    assert main(["list", "models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(MODELS)
    assert rows[0]["image_size"] == 28 and rows[2]["defaults"]["batch_size"] == 512


def test_status_takes_a_sweep_name_as_report_does(recorded: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    (tmp_path / "grid.yaml").write_text(GRID)
    assert main(["status", str(tmp_path / "grid.yaml"), "--store", str(recorded), "--json"]) == 0
    by_grid = json.loads(capsys.readouterr().out)
    assert main(["status", "e", "--store", str(recorded), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_grid and [r["state"] for r in by_grid] == ["complete"]
    assert main(["status", "e", "--store", str(recorded)]) == 0
    assert "1 complete, 0 running, 0 failed, 0 waiting" in capsys.readouterr().out
