"""What a trial's run receives each epoch: names the MLflow UI can tell apart, info_loss only with a Q head;
sent from a background thread that the training loop does not wait for."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gansweep.errors import GansweepError
from gansweep.hparams import resolve_hyperparameters
from gansweep.tracking import MlflowEpochLogger, Sender, check_tracking
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
    with Sender() as sender:  # a stand-in for Tracker: only log_metrics is called
        MlflowEpochLogger(sent, "run", sender).on_epoch(trainer, record)  # type: ignore[arg-type]
        sender.flush()
    names = {name for name, _, _ in sent.values}
    assert names == {"d_loss", "g_loss", "d_real", "d_fake", "seconds", "d_loss_per_step", "g_loss_per_step"} | (
        {"info_loss"} if with_info else set()
    )
    steps = [step for name, _, step in sent.values if name == "d_loss_per_step"]
    assert steps == list(range(1, trainer.steps_per_epoch + 1))


def test_check_tracking_leaves_schemes_it_does_not_know_to_mlflow() -> None:
    for uri in ("databricks://profile", "databricks", "sqlite:////nowhere/mlflow.db"):
        check_tracking(uri)  # no connection tried, nothing raised


class _GatedStore:
    """A tracking store whose calls wait until ``gate`` opens (a store far slower than training); notes
    what arrives, in order, and the epoch the trainer had finished when it did."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.trainer: Trainer | None = None
        self.arrived: list[tuple[list[tuple[str, float, int]], int]] = []

    def log_metrics(self, run_id: str, values: list[tuple[str, float, int]]) -> None:
        assert self.gate.wait(timeout=120), "the gate never opened: training waited on the store"
        assert self.trainer is not None
        self.arrived.append((values, self.trainer.epoch))

    def log_image(self, run_id: str, image, key: str, step: int) -> None: ...


def test_epochs_train_while_the_store_is_busy_and_every_epoch_arrives_in_order(digits, open_at) -> None:
    """The store answers nothing until epoch 3 has ended: with tracking on the training path the first
    epoch's call would never return (the test would time out); off it, epochs 2 and 3 train meanwhile."""
    hp = resolve_hyperparameters("cs231n-mlp", {"epochs": 4, "batch_size": 500})
    store = _GatedStore()
    with Sender() as sender:
        logger = MlflowEpochLogger(store, "run", sender)  # type: ignore[arg-type]
        trainer = Trainer("cs231n-mlp", digits, hp, device="cpu", callbacks=[logger, open_at(store.gate, 3)])
        store.trainer = trainer
        history = trainer.fit()
        sender.flush()
    assert [values[0][2] for values, _ in store.arrived] == [1, 2, 3, 4]  # the means come first, at step = epoch
    assert store.arrived[0][1] >= 3  # epoch 1's metrics reached the store after epoch 3 had trained
    per_step = [(v, step) for values, _ in store.arrived for k, v, step in values if k == "d_loss_per_step"]
    assert [step for _, step in per_step] == list(range(1, 4 * trainer.steps_per_epoch + 1))
    assert [v for v, _ in per_step] == history.steps["d_loss"]


def test_a_failed_call_is_raised_in_the_callers_thread_and_later_ones_are_not_made() -> None:
    made: list[int] = []

    def fail() -> None:
        raise ConnectionError("the store went away")

    with Sender() as sender:
        sender.send(lambda: made.append(1))
        sender.send(fail)
        sender.send(lambda: made.append(3))  # after a failure: it would land out of order
        with pytest.raises(ConnectionError, match="went away"):
            sender.flush()
        with pytest.raises(ConnectionError):
            sender.send(lambda: made.append(4))
    assert made == [1] and isinstance(sender.error, ConnectionError)


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


class _Images(_Sent):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, int, tuple[int, ...]]] = []

    def log_image(self, run_id: str, image, key: str, step: int) -> None:
        self.images.append((key, step, image.shape))


def test_each_epochs_sample_grid_goes_to_mlflows_image_grid(digits) -> None:
    """Epoch 0's grid (before training) comes with epoch 1's, then one per epoch, at step = epoch."""
    sent = _Images()
    with Sender() as sender:
        logger = MlflowEpochLogger(sent, "run", sender)  # type: ignore[arg-type]
        hp = resolve_hyperparameters("cs231n-mlp", {"epochs": 2, "batch_size": 500})
        Trainer("cs231n-mlp", digits, hp, device="cpu", callbacks=[logger]).fit()
        sender.flush()
    assert [(key, step) for key, step, _ in sent.images] == [("samples", 0), ("samples", 1), ("samples", 2)]
    assert sent.images[0][2] == (302, 302)  # 10 x 10 digits of 28 px with 2 px gutters


def test_a_run_is_named_by_any_prefix_only_it_has(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from gansweep.tracking import resolve_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("x")
    ids: list[str] = []
    while len({i[0] for i in ids}) == len(ids):  # until two runs share a first character (17 at most)
        ids.append(client.create_run(experiment).info.run_id)
    shared = next(i[0] for i in ids if sum(j[0] == i[0] for j in ids) > 1)
    assert resolve_run(uri, ids[0][:8]) == ids[0] == resolve_run(uri, ids[0])
    assert resolve_run(uri, "0123abcd") == "0123abcd" or "0123abcd" in {i[:8] for i in ids}  # no such run
    with pytest.raises(GansweepError, match=rf"run '{shared}' is ambiguous in sqlite:.*: \d runs start so \("):
        resolve_run(uri, shared)
