"""Reading a history CSV and samples (.npy, or .npz by epoch) made anywhere, for ``gansweep diagnose``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from gansweep.errors import GansweepError

REQUIRED = ("epoch", "d_loss", "g_loss")
OPTIONAL = ("d_real", "d_fake")


def read_history(path: Path) -> list[dict[str, float]]:
    """One row per epoch: ``epoch,d_loss,g_loss`` and optionally ``d_real,d_fake`` (other columns kept)."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in columns]
            if missing:
                raise GansweepError(
                    f"{path}: missing column {', '.join(repr(m) for m in missing)}; needs {', '.join(REQUIRED)} "
                    f"(optional: {', '.join(OPTIONAL)}), found: {', '.join(columns) or 'no header'}"
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    rows.append({k: float(v) for k, v in row.items() if k and v not in (None, "")})
                except ValueError:
                    raise GansweepError(f"{path}:{line}: not a number in {row}") from None
    except OSError as error:
        raise GansweepError(f"{path}: cannot read ({error.strerror})") from None
    if not rows:
        raise GansweepError(f"{path}: no rows after the header")
    if not any(math.isfinite(r["d_loss"]) or math.isfinite(r["g_loss"]) for r in rows):
        raise GansweepError(f"{path}: every d_loss and g_loss is NaN or infinite; nothing to diagnose")
    for r in rows:
        for key in ("epoch", "modes_covered"):
            if key in r:
                r[key] = int(r[key])
    return rows


def _images(array: np.ndarray, where: str) -> torch.Tensor:
    """float32 (N, 1, 28, 28) or (N, 28, 28) in [-1, 1] -> uint8 (N, 1, 28, 28)."""
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1:] != (1, 28, 28) or len(array) < 10:
        raise GansweepError(f"{where}: expected shape (N, 1, 28, 28) or (N, 28, 28) with N >= 10, got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise GansweepError(f"{where}: expected finite float values in [-1, 1], got dtype {array.dtype}")
    if array.min() < -1.01 or array.max() > 1.01:
        raise GansweepError(
            f"{where}: values must lie in [-1, 1] (tanh output), found [{array.min():.3g}, {array.max():.3g}]"
        )
    return torch.from_numpy(((np.clip(array, -1, 1) + 1) * 127.5).round().astype(np.uint8))


def _epoch_of(key: str, path: Path, epochs: list[int]) -> int:
    digits = key.removeprefix("epoch").lstrip("_")
    if not digits.isdigit() or int(digits) not in epochs:
        raise GansweepError(
            f"{path}: array {key!r} names no epoch of the history; name each array by its epoch "
            f"(e.g. '5' or 'epoch_5'), one of {epochs[0]}-{epochs[-1]}"
        )
    return int(digits)


def read_samples(path: Path, epochs: list[int]) -> dict[int, torch.Tensor]:
    """Generated images by epoch: a .npy holds the last epoch's, a .npz one array per epoch, named by it
    ('5' or 'epoch_5'), so that the verdict can read a trend. Each array as ``_images`` takes it."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise GansweepError(f"{path}: not a readable .npy or .npz array ({error})") from None
    if isinstance(loaded, np.ndarray):
        return {epochs[-1]: _images(loaded, str(path))}
    with loaded:
        if not loaded.files:
            raise GansweepError(f"{path}: the .npz holds no arrays; give one per epoch, named by it ('5' or 'epoch_5')")
        return {_epoch_of(key, path, epochs): _images(loaded[key], f"{path}[{key}]") for key in loaded.files}
