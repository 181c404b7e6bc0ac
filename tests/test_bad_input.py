"""Bad input reaching `gansweep run`: one clear line, exit 2, no traceback, no store touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from gansweep.cli import main

GRID = "name: e\nepochs: 1\ndevice: cpu\nmodels:\n  - model: cs231n-mlp\n    grid: {lr: [1.0e-3]}\n"


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    path = tmp_path / "g.yaml"
    path.write_text(GRID)
    return path


def _fails(argv: list[str], capsys, *fragments: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(f in err for f in fragments), err
    return err


def test_store_not_writable(grid: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    _fails(["run", str(grid), "--store", str(blocker / "mlruns")], capsys, "store folder", "is not writable")


def test_tracking_server_unreachable_fails_fast_and_touches_no_store(grid: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "mlruns"
    _fails(["run", str(grid), "--store", str(store), "--tracking-uri", "http://127.0.0.1:1"], capsys,
           "--tracking-uri http://127.0.0.1:1 is unreachable")  # fmt: skip
    assert not store.exists()


def test_storage_url_never_prints_its_password(grid: Path, tmp_path: Path, capsys) -> None:
    err = _fails(["run", str(grid), "--store", str(tmp_path / "m"), "--storage", "postgresql://bob:secret@127.0.0.1:1/db"],
                 capsys, "--storage postgresql://bob:***@127.0.0.1:1/db")  # fmt: skip
    assert "secret" not in err


def test_dataset_missing_offline(tmp_path: Path, capsys, monkeypatch) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    path = tmp_path / "g.yaml"
    path.write_text(GRID.replace("epochs: 1", f"epochs: 1\ndataset: mnist\ndata_dir: {tmp_path / 'data'}"))
    _fails(["run", str(path), "--store", str(tmp_path / "m")], capsys, "Place the four uncompressed IDX files")
    assert not (tmp_path / "m").exists()
