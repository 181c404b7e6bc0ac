"""What a trial's run receives each epoch: names the MLflow UI can tell apart, info_loss only with a Q head."""

from __future__ import annotations

from pathlib import Path

import pytest

from gansweep.errors import GansweepError
from gansweep.hparams import resolve_hyperparameters
from gansweep.tracking import MlflowEpochLogger, check_tracking
from gansweep.trainer import STEP_METRICS, Trainer


class _Sent:
    def __init__(self) -> None:
        self.values: list[tuple[str, float, int]] = []

    def log_metrics(self, run_id: str, values: list[tuple[str, float, int]]) -> None:
        self.values += values


@pytest.mark.parametrize(("model", "with_info"), [("mlp", False), ("infogan28", True)])
def test_an_epoch_sends_its_means_and_per_step_losses(digits, model: str, with_info: bool) -> None:
    trainer = Trainer(model, digits, resolve_hyperparameters(model, {"epochs": 1, "batch_size": 500}), device="cpu")
    trainer.history.steps = {key: [0.5] * trainer.steps_per_epoch for key in STEP_METRICS}
    sent = _Sent()
    record = {"epoch": 1, **{key: 0.5 for key in STEP_METRICS}, "seconds": 1.0}
    MlflowEpochLogger(sent, "run").on_epoch(trainer, record)  # a stand-in for Tracker: only log_metrics is called
    names = {name for name, _, _ in sent.values}
    assert names == {"d_loss", "g_loss", "d_real", "d_fake", "seconds", "d_loss_per_step", "g_loss_per_step"} | (
        {"info_loss"} if with_info else set()
    )
    steps = [step for name, _, step in sent.values if name == "d_loss_per_step"]
    assert steps == list(range(1, trainer.steps_per_epoch + 1))


def test_check_tracking_leaves_schemes_it_does_not_know_to_mlflow() -> None:
    for uri in ("databricks://profile", "databricks", "sqlite:////nowhere/mlflow.db"):
        check_tracking(uri)  # no connection tried, nothing raised


@pytest.mark.parametrize("uri", ["file:///nowhere", "mlruns", "banana"])
def test_a_folder_is_refused_in_one_line_unless_mlflow_allows_it(uri: str, monkeypatch) -> None:
    """MLflow 3 refuses its file store with a paragraph (and gansweep's stores are SQLite)."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(GansweepError, match=r"is a folder \(MLflow's file store\), which MLflow 3 opens only with"):
        check_tracking(uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_tracking(uri)


def test_a_command_that_only_reads_creates_no_database(tmp_path: Path) -> None:
    missing = tmp_path / "mlflow.db"
    with pytest.raises(GansweepError, match="no MLflow store at .*: check --tracking-uri"):
        check_tracking(f"sqlite:///{missing}", read_only=True)
    assert not missing.exists()
    check_tracking(f"sqlite:///{missing}")  # `run` makes it
