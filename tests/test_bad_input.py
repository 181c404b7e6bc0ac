"""The README's bad-input table, row by row: one clear line naming what and where, a non-zero exit, no
traceback (unless --debug), and a store that already holds a finished trial left exactly as it was."""

from __future__ import annotations

import errno
import hashlib
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gansweep.cli import main

GRID = "name: e\nepochs: 2\ndevice: cpu\nmodels:\n  - model: cs231n-mlp\n    batch_size: 500\n    grid: {lr: [1.0e-3]}\n"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A store in which the sweep ``e`` has one finished trial."""
    folder = tmp_path_factory.mktemp("recorded")
    (folder / "g.yaml").write_text(GRID)
    assert main(["run", str(folder / "g.yaml"), "--store", str(folder / "mlruns")]) == 0
    return folder / "mlruns"


@pytest.fixture
def store(recorded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "mlruns"
    shutil.copytree(recorded, copy)
    return copy


def _fingerprint(store: Path) -> dict[str, str]:
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(store.rglob("*")) if p.is_file()}


def _fails(argv: list[str], capsys, *fragments: str, code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(f in err for f in fragments), err
    return err


def _grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


BAD_GRIDS = {
    "malformed YAML": ("epochs: 1\nmodels:\n  - model: mlp\n    grid: {lr: [1e-3\n", "grid.yaml:5: not valid YAML: expected ',' or ']'"),
    "unknown key": (GRID + "    colour: red\n", "grid.yaml:8: models[0].colour: Extra inputs are not permitted; allowed here:"),
    "wrong type": (GRID.replace("epochs: 2", "epochs: two"), "grid.yaml:2: epochs: Input should be a valid integer"),
    "out-of-range value": (GRID.replace("[1.0e-3]", "[-1]"), 'models[0] (cs231n-mlp) {"lr": -1}: lr must be > 0, got -1'),
    "batch larger than the data": (GRID.replace("batch_size: 500", "batch_size: 9000"), "batch_size must be at most 4500 (the training split of mnist-5k)"),
    "unknown model": (GRID.replace("model: cs231n-mlp", "model: stylegan"), "grid.yaml:5: models[0].model: unknown model 'stylegan'; choose one of: mlp"),
    "unknown data set": (GRID.replace("epochs: 2", "epochs: 2\ndataset: cifar10"), "grid.yaml:3: dataset: unknown dataset 'cifar10'; choose one of: mnist-5k"),
    "unknown loss": (GRID + "    loss: hinge\n", "loss must be one of: bce, minimax, lsgan; got 'hinge'"),
    "empty grid": ("name: e\nepochs: 1\nmodels:\n  - model: mlp\n", "grid.yaml:4: models[0]: empty grid: give `grid:` and/or `points:`"),
}


@pytest.mark.parametrize("case", BAD_GRIDS, ids=list(BAD_GRIDS))
def test_bad_grid_file(case: str, store: Path, tmp_path: Path, capsys) -> None:
    text, message = BAD_GRIDS[case]
    before = _fingerprint(store)
    _fails(["run", str(_grid(tmp_path, text)), "--store", str(store)], capsys, message)
    assert _fingerprint(store) == before


BAD_PLACES = {
    "storage unreachable": (["--storage", "postgresql://bob:secret@127.0.0.1:1/db"], "--storage postgresql://bob:***@127.0.0.1:1/db: cannot open"),
    "tracking server unreachable": (["--tracking-uri", "http://127.0.0.1:1"], "--tracking-uri http://127.0.0.1:1 is unreachable"),
    "missing database driver": (["--storage", "mysql://bob:secret@127.0.0.1:1/db"], "its database driver is not installed"),
}


@pytest.mark.parametrize("case", BAD_PLACES, ids=list(BAD_PLACES))
def test_unreachable_stores_fail_fast_and_touch_nothing(case: str, store: Path, tmp_path: Path, capsys) -> None:
    flags, message = BAD_PLACES[case]
    before = _fingerprint(store)
    err = _fails(["run", str(_grid(tmp_path, GRID)), "--store", str(store), *flags], capsys, message)
    assert "secret" not in err
    assert _fingerprint(store) == before


def test_storage_with_a_wrong_password(postgres_url: str, store: Path, tmp_path: Path, capsys) -> None:
    scheme, rest = postgres_url.split("://", 1)
    user = rest.split(":", 1)[0]
    wrong = f"{scheme}://{user}:not-the-password@{rest.rsplit('@', 1)[1]}"
    before = _fingerprint(store)
    err = _fails(["run", str(_grid(tmp_path, GRID)), "--store", str(store), "--storage", wrong], capsys,
                 f"--storage {scheme}://{user}:***@", "password authentication failed")  # fmt: skip
    assert "not-the-password" not in err
    assert _fingerprint(store) == before


def test_store_not_writable(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    _fails(["run", str(_grid(tmp_path, GRID)), "--store", str(blocker / "mlruns")], capsys, "store folder", "is not writable")


def test_dataset_missing_offline(store: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    before = _fingerprint(store)
    grid = _grid(tmp_path, GRID.replace("epochs: 2", f"epochs: 2\ndataset: mnist\ndata_dir: {tmp_path / 'data'}"))
    _fails(["run", str(grid), "--store", str(store)], capsys, "Place the four uncompressed IDX files")
    assert _fingerprint(store) == before


def test_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    from gansweep.config import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "run", str(_grid(tmp_path, GRID.replace("epochs: 2", "epochs: two")))])


def test_corrupted_checkpoint_given_to_train(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "c.pt"
    bad.write_bytes(b"not a checkpoint")
    _fails(["train", "--model", "cs231n-mlp", "--epochs", "1", "--device", "cpu", "--resume", str(bad)], capsys,
           f"cannot read checkpoint {bad}")  # fmt: skip


def test_corrupted_checkpoint_in_a_sweep_starts_the_trial_over(tmp_path: Path, wait_for) -> None:
    """A trial interrupted after its first epoch, whose checkpoint artifact is then damaged: the next
    run warns, trains the point from epoch 0, and finishes it."""
    from mlflow import MlflowClient

    grid, store = _grid(tmp_path, GRID.replace("epochs: 2", "epochs: 8").replace("500", "100")), tmp_path / "mlruns"
    command = [sys.executable, "-m", "gansweep.cli", "run", str(grid), "--store", str(store)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoints = lambda: list((store / "artifacts").glob("*/artifacts/checkpoint.pt"))  # noqa: E731
    wait_for(lambda: bool(checkpoints()))
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    checkpoints()[0].write_bytes(b"\x00" * 100)

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "starts over" in rerun.stderr and "Traceback" not in rerun.stderr
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e").experiment_id], "tags.`gansweep.role` = 'trial'")
    assert sorted((r.info.status, r.data.tags.get("gansweep.resumed_from_epoch")) for r in runs) == [("FINISHED", "0"), ("KILLED", None)]


def test_nan_losses_stop_the_trial_with_a_diverged_flag(tmp_path: Path, capsys) -> None:
    train = ["train", "--model", "cs231n-mlp", "--epochs", "3", "--lr", "1e6", "--loss", "lsgan", "--batch-size", "500", "--device", "cpu"]
    _fails(train, capsys, "stopped early: non-finite loss in epoch 1", code=1)

    # in a sweep a diverged trial is an outcome, not an error: recorded, flagged, and the table says so
    grid = _grid(tmp_path, GRID.replace("[1.0e-3]", "[1.0e+6]") + "    loss: lsgan\n")
    assert main(["run", str(grid), "--store", str(tmp_path / "mlruns")]) == 0
    out = capsys.readouterr().out
    assert "diverged" in out and "1/1 trials complete" in out


def test_disk_full_while_writing_an_artifact(store: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """ENOSPC from the artifact store (simulated at the file copy): the trial is recorded as failed,
    the sweep stops with one line saying what to do, and the finished trial is left as it was."""
    from mlflow import MlflowClient

    before = _fingerprint(store / "artifacts")
    copy = shutil.copyfileobj

    def full(source, target, *args, **kwargs):  # the epoch checkpoint, on its way into the artifact store
        if str(getattr(source, "name", "")).endswith("checkpoint.pt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(store / "artifacts"))
        return copy(source, target, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfileobj", full)
    grid = _grid(tmp_path, GRID.replace("[1.0e-3]", "[1.0e-3, 5.0e-4]"))
    _fails(["run", str(grid), "--store", str(store)], capsys, "disk full while recording cs231n-mlp lr=0.0005",
           "No space left on device", "--retry-failed")  # fmt: skip
    assert {k: v for k, v in _fingerprint(store / "artifacts").items() if k in before} == before

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e").experiment_id], "tags.`gansweep.role` = 'trial'")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]

    monkeypatch.setattr(shutil, "copyfileobj", copy)
    assert main(["run", str(grid), "--store", str(store), "--retry-failed"]) == 0
    assert "2/2 trials complete, 1 trained in this run" in capsys.readouterr().out
