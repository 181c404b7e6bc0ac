"""Reading a history CSV and samples (.npy, or .npz by epoch) made anywhere, for ``gansweep diagnose``."""

from __future__ import annotations

import codecs
import csv
import io
import math
from pathlib import Path

import numpy as np
import torch

from gansweep.diagnostics.metrics import N_CLASSES
from gansweep.errors import GansweepError

REQUIRED = ("epoch", "d_loss", "g_loss")
OPTIONAL = ("d_real", "d_fake")
MAX_BYTES = 10_000_000
"""The largest history file read: 100,000 epochs of ``epoch,d_loss,g_loss,d_real,d_fake`` take about 5 MB."""
MAX_EPOCH = 10**9
"""Far above any run's epochs, far below 2**53, past which a float stops holding every whole number."""


def read_history(path: Path) -> list[dict[str, float]]:
    """One row per epoch: ``epoch,d_loss,g_loss`` and optionally ``d_real,d_fake`` (other columns kept).

    The file must be UTF-8 text (a byte-order mark is fine) of at most ``MAX_BYTES``, in CSV (a cell at
    most ``csv.field_size_limit()`` characters, blank lines skipped) with a header row naming at least
    ``REQUIRED``. In every row:

    - ``epoch`` is a whole number from 0 to ``MAX_EPOCH``, greater than the row before's (a file that
      counts from 0, as ``for epoch in range(n)`` does, is read as counting from 1: see ``from_one``);
    - ``d_loss`` and ``g_loss`` are numbers, NaN and ``inf``/``-inf`` included (a diverged run), as long
      as some row has a finite one;
    - any other cell is a number, or empty (then left out of the row);
    - ``modes_covered``, where given, is a whole number from 0 to 10, or ``nan`` (not measured: left out).

    Anything else raises a ``GansweepError`` naming the file, the line where there is one, and the rule.
    """
    rows = _rows(path, _text(path))
    if not rows:
        raise GansweepError(f"{path}: no rows after the header")
    if not any(math.isfinite(r["d_loss"]) or math.isfinite(r["g_loss"]) for r in rows):
        raise GansweepError(f"{path}: every d_loss and g_loss is NaN or infinite; nothing to diagnose")
    return rows


def from_one(rows: list[dict[str, float]], samples: dict[int, torch.Tensor]) -> bool:
    """Renumbers a history whose first epoch is 0, and its samples by epoch, to count epochs trained
    (0 -> 1), in place: the verdict's epochs are epochs trained, and so are its rules' thresholds.
    True when it did."""
    if not rows or rows[0]["epoch"] != 0:
        return False
    for row in rows:
        row["epoch"] += 1
    for epoch in sorted(samples, reverse=True):
        samples[epoch + 1] = samples.pop(epoch)
    return True


def _text(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)  # not stat: a pipe or a growing file has no size to trust
    except OSError as error:
        raise GansweepError(f"{path}: cannot read ({error.strerror})") from None
    if len(data) > MAX_BYTES:
        raise GansweepError(
            f"{path}: over {MAX_BYTES // 1_000_000} MB, the most a history may hold (100,000 epochs take about 5 MB)"
        )
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise GansweepError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); save it as UTF-8 CSV"
        ) from None


def _rows(path: Path, text: str) -> list[dict[str, float]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[dict[str, float]] = []
    try:
        columns = next(reader, [])
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise GansweepError(
                f"{path}: missing column {', '.join(repr(m) for m in missing)}; needs {', '.join(REQUIRED)} "
                f"(optional: {', '.join(OPTIONAL)}), found: {', '.join(columns) or 'no header'}"
            )
        for cells in filter(None, reader):  # a blank line reads as []
            where = f"{path}:{reader.line_num}"
            row = _row(dict(zip(columns, cells)), where)
            if rows and row["epoch"] <= rows[-1]["epoch"]:
                raise GansweepError(
                    f"{where}: epoch {row['epoch']} comes after epoch {rows[-1]['epoch']}; "
                    "epochs must increase strictly, one row per epoch"
                )
            rows.append(row)
    except csv.Error as error:
        raise GansweepError(f"{path}:{reader.line_num}: not a CSV history ({error})") from None
    return rows


def _row(cells: dict[str, str], where: str) -> dict[str, float]:
    empty = [column for column in REQUIRED if not cells.get(column)]
    if empty:
        raise GansweepError(
            f"{where}: empty {', '.join(empty)}; every row needs {', '.join(REQUIRED)} (nan for a loss not measured)"
        )
    row = {column: _number(text, column, where) for column, text in cells.items() if column and text}
    row["epoch"] = _whole(row["epoch"], "epoch", 0, MAX_EPOCH, where)
    modes = row.pop("modes_covered", math.nan)
    if not math.isnan(modes):
        row["modes_covered"] = _whole(modes, "modes_covered", 0, N_CLASSES, where)
    return row


def _number(text: str, column: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise GansweepError(
            f"{where}: not a number in {column}: {shown!r}; write numbers like 0.25, 1e-3, nan or inf"
        ) from None


def _whole(value: float, column: str, low: int, high: int, where: str) -> int:
    if not (math.isfinite(value) and value.is_integer() and low <= value <= high):
        raise GansweepError(f"{where}: {column} must be a whole number from {low} to {high:,}, got {value!r}")
    return int(value)


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
