from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets

from gansweep.data import IDX_FILES, DatasetUnavailable, load_dataset, to_model_range


def test_mnist_5k_is_5000_real_digits_with_a_stratified_heldout_split(digits) -> None:
    assert digits.train_images.shape == (4500, 1, 28, 28) and digits.train_images.dtype == torch.uint8
    assert digits.heldout_images.shape == (500, 1, 28, 28)
    assert torch.bincount(digits.heldout_labels).tolist() == [50] * 10
    assert torch.bincount(digits.train_labels).tolist() == [450] * 10
    assert 0.1 < digits.train_images.float().mean() / 255 < 0.2  # MNIST's ink fraction, not noise


def test_model_range_and_resize(digits) -> None:
    tanh = to_model_range(digits.train_images[:8], 64, "tanh", torch.device("cpu"))
    assert tanh.shape == (8, 1, 64, 64) and tanh.min() >= -1 and tanh.max() <= 1
    sigmoid = to_model_range(digits.train_images[:8], 28, "sigmoid", torch.device("cpu"))
    assert torch.equal(sigmoid, digits.train_images[:8].float() / 255)


def _write_idx(raw: Path, n_train: int, n_test: int) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_sets_read_idx_files(tmp_path: Path, name: str, folder: str) -> None:
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw, n_train=30, n_test=20)
    loaded = load_dataset(name, tmp_path)
    assert loaded.train_images.shape == (30, 1, 28, 28) and loaded.heldout_images.shape == (20, 1, 28, 28)
    assert loaded.train_labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_offline_without_files_names_the_directory_and_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetUnavailable) as caught:
        load_dataset("mnist", tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert all(name in message for name in IDX_FILES)


def test_unknown_dataset() -> None:
    with pytest.raises(Exception, match="unknown dataset 'cifar'; choose one of: mnist-5k, mnist, fashion-mnist"):
        load_dataset("cifar")
