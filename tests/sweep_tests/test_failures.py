"""A trial that raises is recorded as failed with its error; the sweep goes on; --retry-failed queues it again."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gansweep.cli import main
from gansweep.trainer import Trainer

GRID = """
name: fails
epochs: 1
device: cpu
models:
  - model: cs231n-mlp
    batch_size: 500
    grid:
      lr: [1.0e-3, 5.0e-4]
"""


def _status(grid: Path, store: Path, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["status", str(grid), "--store", str(store), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_raising_trial_is_recorded_failed_and_retry_failed_queues_it_again(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from mlflow import MlflowClient

    grid, store = tmp_path / "grid.yaml", tmp_path / "mlruns"
    grid.write_text(GRID)
    fit = Trainer.fit

    def out_of_memory_at_5e_4(self: Trainer):
        if self.hp.lr_g == 5e-4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return fit(self)

    monkeypatch.setattr(Trainer, "fit", out_of_memory_at_5e_4)
    assert main(["run", str(grid), "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert "OutOfMemoryError: CUDA out of memory" in err and "--retry-failed" in err
    rows = _status(grid, store, capsys)
    assert [r["state"] for r in rows] == ["complete", "failed"]
    assert rows[1]["detail"].startswith("OutOfMemoryError: CUDA out of memory") and rows[1]["worker"].endswith(" cpu")

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("fails").experiment_id], "tags.`gansweep.role` = 'trial'")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    assert "OutOfMemoryError" in next(r for r in runs if r.info.status == "FAILED").data.tags["gansweep.error"]

    monkeypatch.setattr(Trainer, "fit", fit)
    assert main(["run", str(grid), "--store", str(store)]) == 1  # failed points wait for --retry-failed
    assert "1/2 trials complete, 0 trained in this run" in capsys.readouterr().out
    assert main(["run", str(grid), "--store", str(store), "--retry-failed"]) == 0
    assert "2/2 trials complete, 1 trained in this run" in capsys.readouterr().out
    assert [r["state"] for r in _status(grid, store, capsys)] == ["complete", "complete"]


def test_status_shows_waiting_points_before_any_run(tmp_path: Path, capsys) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    rows = _status(grid, tmp_path / "mlruns", capsys)
    assert [(r["state"], r["hyperparameters"]["lr_g"]) for r in rows] == [("waiting", 1e-3), ("waiting", 5e-4)]
    assert main(["status", str(grid), "--store", str(tmp_path / "mlruns")]) == 0
    out, err = capsys.readouterr()
    assert "0 complete, 0 running, 0 failed, 2 waiting" in out
    assert err.startswith(f"warning: no sweep store at {tmp_path / 'mlruns'} (no optuna.journal)")  # a typo shows
    assert not (tmp_path / "mlruns").exists()  # status creates no store
