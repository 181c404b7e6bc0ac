"""Reading a history CSV and samples (.npy, or .npz by epoch) made anywhere, for ``gansweep diagnose``."""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import math
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansweep.diagnostics.metrics import N_CLASSES
from gansweep.errors import GansweepError

REQUIRED = ("epoch", "d_loss", "g_loss")
OPTIONAL = ("d_real", "d_fake")
MAX_BYTES = 10_000_000
"""The largest history file read: 100,000 epochs of ``epoch,d_loss,g_loss,d_real,d_fake`` take about 5 MB."""
MAX_SAMPLES = 10_000
"""Samples judged per epoch, as a sweep's ``eval_samples`` allows: the judge reads them at once (10,000 are
~31 MB), and the flags' noise thresholds were measured at 256. Checked on the file's shape, before its
values are read (a .npy is mapped, not loaded)."""
MAX_TOTAL_SAMPLES = 50_000
"""Samples judged by one ``diagnose`` in all, over every epoch's array: the judge reads ~1,300 a second on
2 CPU cores (10,000 in 7.7 s, measured), so these take about 40 s and 39 MB as pixels; 195 epochs of the
256 a sweep judges, 500 of a gansweep samples.npy's 100. Counted from the file's headers before any
values are read: a 1.2 MB .npz of 39 compressed arrays of 10,000 zeros ran past 120 s at 3.3 GB."""
MAX_ARRAYS = 500
"""Epochs' arrays judged by one ``diagnose``: each is an evaluation of its own, 0.07 s even for 10 samples
(the Fréchet distance's matrix square root; measured on the shared 2-core machine), so 2,000 arrays of 10
samples, within ``MAX_TOTAL_SAMPLES``, took 299 s; 500 take about 35 s, a 500-epoch run evaluated every
epoch. Counted from the file's table of contents."""
MAX_EPOCH = 10**9
"""Far above any run's epochs, far below 2**53, past which a float stops holding every whole number."""


def read_history(path: Path, loss: str = "bce") -> list[dict[str, float]]:
    """One row per epoch: ``epoch,d_loss,g_loss`` and optionally ``d_real,d_fake`` (other columns kept),
    as the adversarial ``loss`` the run trained with wrote them (``MEANINGS``).

    The file must be UTF-8 text (a byte-order mark is fine) of at most ``MAX_BYTES``, in CSV (a cell at
    most ``csv.field_size_limit()`` characters, blank lines skipped) with a header row naming at least
    ``REQUIRED``. In every row:

    - ``epoch`` is a whole number from 0 to ``MAX_EPOCH``, one more than the row before's (a file that
      counts from 0, as ``for epoch in range(n)`` does, is read as counting from 1: see ``from_one``): the
      flags read consecutive rows as consecutive epochs, so a gap would shorten every window;
    - each row has one cell per column (a reader would cut extra cells, or read missing ones as empty);
    - ``d_loss`` and ``g_loss`` are numbers, NaN and ``inf``/``-inf`` included (a diverged run), as long
      as some row has a finite one;
    - any other cell is a number, or empty (then left out of the row), except that ``d_real`` and
      ``d_fake`` are given in every row or in none (a mean D output is logged every epoch; a gap there
      would read as the bound of ``bound_d_fake``, or as nothing);
    - ``modes_covered``, where given, is a whole number from 0 to 10, or ``nan`` (not measured: left out);
    - a finite loss or probability has the sign and range the ``loss`` gives it (``MEANINGS``: a bce D loss
      of 1000 is a sum over batches, not the mean the flags read);
    - no column is named twice (a reader would keep one of them silently).

    Anything else raises a ``GansweepError`` naming the file, the line where there is one, and the rule.
    """
    if loss not in MEANINGS:
        raise GansweepError(f"--loss must be one of: {', '.join(MEANINGS)}; got {loss!r}")
    rows = _rows(path, _text(path), MEANINGS[loss])
    if not rows:
        raise GansweepError(f"{path}: no rows after the header")
    if not any(math.isfinite(r["d_loss"]) or math.isfinite(r["g_loss"]) for r in rows):
        raise GansweepError(f"{path}: every d_loss and g_loss is NaN or infinite; nothing to diagnose")
    return rows


def bound_d_fake(rows: list[dict[str, float]], loss: str) -> int:
    """Gives rows without ``d_fake`` (or with ``nan``: not measured) its bound from their D loss, in place,
    under a loss whose D loss is BCE (``bce``, ``minimax``); returns how many rows it gave. That loss is -log D(x) - log(1 - D(G(z))), both terms
    at least 0, so by Jensen mean D(G(z)) <= 1 - exp(-d_loss): a bound under the D-loss collapse's 0.05
    is a D(G(z)) under it, and a bound above it flags nothing. Without it a history of D loss 0 and G
    loss 50 (report 000's own words) read "good": its D-loss collapse could not be seen."""
    if loss not in ("bce", "minimax"):
        return 0
    missing = [r for r in rows if math.isnan(r.get("d_fake", math.nan)) and math.isfinite(r["d_loss"])]
    for row in missing:
        row["d_fake"] = 1 - math.exp(-row["d_loss"])
    return len(missing)


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


def _rows(path: Path, text: str, meaning: dict[str, tuple[Rule, ...]]) -> list[dict[str, float]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[dict[str, float]] = []
    lines: list[int] = []
    try:
        columns = next(reader, [])
        _check_header(path, columns, reader.line_num)
        for cells in filter(None, reader):  # a blank line reads as []
            where = f"{path}:{reader.line_num}"
            if len(cells) != len(columns):
                raise GansweepError(
                    f"{where}: {len(cells)} cells under a header of {len(columns)} columns ({', '.join(columns)}); "
                    "give every row one cell per column, empty where nothing was measured"
                )
            row = _row(dict(zip(columns, cells)), where)
            _check_meaning(row, meaning, where)
            if rows:
                _check_follows(row["epoch"], rows[-1]["epoch"], where)
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as error:
        raise GansweepError(f"{path}:{reader.line_num}: not a CSV history ({error})") from None
    _check_whole_columns(path, rows, lines, [c for c in OPTIONAL if c in columns])
    return rows


def _check_header(path: Path, columns: list[str], line: int) -> None:
    if twice := [c for c in dict.fromkeys(columns) if c and columns.count(c) > 1]:
        at = [i + 1 for i, c in enumerate(columns) if c == twice[0]]
        raise GansweepError(
            f"{path}:{line}: column {twice[0]!r} is named twice (columns {at[0]} and {at[1]}); name each column once"
        )
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise GansweepError(
            f"{path}: missing column {', '.join(repr(m) for m in missing)}; needs {', '.join(REQUIRED)} "
            f"(optional: {', '.join(OPTIONAL)}), found: {', '.join(columns) or 'no header'}"
        )


def _check_follows(epoch: float, before: float, where: str) -> None:
    if epoch <= before:
        raise GansweepError(
            f"{where}: epoch {epoch} comes after epoch {before}; epochs must increase strictly, one row per epoch"
        )
    if epoch > before + 1:
        gap = f"epoch {before + 1}" if epoch == before + 2 else f"epochs {before + 1}-{epoch - 1}"
        raise GansweepError(
            f"{where}: epoch {epoch} follows epoch {before}, so {gap} {'is' if epoch == before + 2 else 'are'} "
            "missing; give one row per epoch, every epoch (the flags read consecutive rows as consecutive epochs)"
        )


def _check_whole_columns(path: Path, rows: list[dict[str, float]], lines: list[int], columns: list[str]) -> None:
    """``d_real`` and ``d_fake`` in every row or in none: an empty cell among given ones is a gap."""
    for column in columns:
        empty = [line for row, line in zip(rows, lines) if column not in row]
        if empty and len(empty) < len(rows):
            raise GansweepError(
                f"{path}:{empty[0]}: empty {column} in {len(empty)} of {len(rows)} rows; give {column} in every "
                f"row (nan where it was not measured), or leave the column out"
            )


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


Rule = tuple[float, float, str]
"""(low, high, why a value outside them cannot be what the column says)."""
PROBABILITY: Rule = (
    0.0,
    1.0,
    "is not a probability: d_real and d_fake are D's mean output on real and generated images, in [0, 1]; "
    "logits must pass the sigmoid per image before the mean; for LSGAN's raw scores pass --loss lsgan",
)
NEVER_NEGATIVE: Rule = (
    0.0,
    math.inf,
    "is negative, which {loss}'s {column} never is; a Wasserstein or hinge loss is not diagnosed here",
)
BCE_D_LOSS_MOST = 200.0
"""The largest D loss of the BCE family: its two -log terms are at most 100 each in torch's ``BCELoss``
(which clamps log at -100, as the seed reports' notebooks use it), and a logits loss passes 100 a term
only where D's logits pass 100, deep in the sigmoid's flat tail where no gradient moves them. A larger
one is a sum over the epoch's batches, not their mean: read as a mean, D loss 1000 bounded D(G(z)) by
1 - exp(-1000) = 1, no collapse, and the history read "good"."""
BCE_D_LOSS: Rule = (
    -math.inf,
    BCE_D_LOSS_MOST,
    f"is more than {{loss}}'s {{column}} can be ({BCE_D_LOSS_MOST:g}: two -log terms that BCELoss clamps at 100); "
    "is it a sum over the epoch's batches? give the mean per batch",
)
SHARE: Rule = (0.0, 1.0, "is not a share in [0, 1], which {column} is (a percentage? divide it by 100)")
DISTANCE: Rule = (-1e-6, math.inf, "is negative, which {column} (a distance) never is")
"""-1e-6: a Fréchet distance of samples close to the reference is a difference of traces, a rounding below 0."""
SAMPLE_MEANINGS: dict[str, tuple[Rule, ...]] = {
    "confidence": (SHARE,),
    "readable": (SHARE,),
    "fid_mnist": (DISTANCE,),
    "diversity": (DISTANCE,),
    "pixel_diversity": (DISTANCE,),
    "class_kl": (DISTANCE,),
}
"""The sample metrics a history may carry (``metrics.sample_metrics``), which the flags read as they are:
a confidence of 85 (a percentage) read as a confident judge, "healthy"."""
MEANINGS: dict[str, dict[str, tuple[Rule, ...]]] = {
    # column -> the rules a value must keep
    "bce": {
        **SAMPLE_MEANINGS,
        "d_loss": (NEVER_NEGATIVE, BCE_D_LOSS),
        "g_loss": ((0.0, math.inf, NEVER_NEGATIVE[2] + " (for the saturating log(1 - D(G(z))) pass --loss minimax)"),),
        "d_real": (PROBABILITY,),
        "d_fake": (PROBABILITY,),
    },
    "minimax": {
        **SAMPLE_MEANINGS,
        "d_loss": (NEVER_NEGATIVE, BCE_D_LOSS),
        "d_real": (PROBABILITY,),
        "d_fake": (PROBABILITY,),
    },
    "lsgan": {**SAMPLE_MEANINGS, "d_loss": (NEVER_NEGATIVE,), "g_loss": (NEVER_NEGATIVE,)},
}
"""Per adversarial loss (``gansweep.losses``): D's losses are sums of -log terms or squares, so never
negative (and under BCE at most ``BCE_D_LOSS_MOST``); the non-saturating G loss, -log D(G(z)), neither,
while the saturating one, log(1 - D(G(z))), is never positive; d_real and d_fake are probabilities except
under LSGAN, which logs D's raw score (1.04, then 8.9 in a first epoch at lr 1e-2). A value outside is
another quantity (a logit, a critic's score, a sum) that the flags would misread: a logit d_fake of -1
reads as D(G(z)) < 0.05, a D-loss collapse."""


def _check_meaning(row: dict[str, float], meaning: dict[str, tuple[Rule, ...]], where: str) -> None:
    for column, rules in meaning.items():
        value = row.get(column, math.nan)
        for low, high, why in rules:
            if math.isfinite(value) and not low <= value <= high:
                loss = next(name for name, m in MEANINGS.items() if m is meaning)
                raise GansweepError(f"{where}: {column} {value:g} {why.format(loss=loss, column=column)}")


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


def _check_shape(shape: tuple[int, ...], where: str) -> None:
    """A sample array's shape as its file gives it, checked before its values are read."""
    if len(shape) not in (3, 4) or shape[-2:] != (28, 28) or (len(shape) == 4 and shape[1] != 1) or shape[0] < 10:
        raise GansweepError(f"{where}: expected shape (N, 1, 28, 28) or (N, 28, 28) with N >= 10, got {shape}")
    if shape[0] > MAX_SAMPLES:
        raise GansweepError(
            f"{where}: {shape[0]:,} samples, more than the {MAX_SAMPLES:,} the judge reads at once; give some of them"
        )


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise GansweepError(f"{where}: expected numbers (floats in [-1, 1], or 0-255 pixels), got dtype {dtype}")


def _images(array: np.ndarray, where: str) -> tuple[torch.Tensor, str]:
    """(N, 1, 28, 28) or (N, 28, 28) samples (``_check_shape``) -> (uint8 (N, 1, 28, 28), the range they were
    read in): floats in [-1, 1] (a tanh generator's), floats in [0, 1] (torchvision's ``ToTensor``; an image
    in [-1, 1] has its dark background below 0, so one whose least value is 0 or more is in [0, 1]), or 0-255
    integers. Read as [-1, 1], real digits in [0, 1] were judged poor, 1/10 digits, fid_mnist 1376 (issue 26)."""
    if array.ndim == 3:
        array = array[:, None]
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise GansweepError(
                f"{where}: integer samples must be 0-255 pixels, found [{array.min()}, {array.max()}]; "
                "or give floats in [-1, 1]"
            )
        return torch.from_numpy(array.astype(np.uint8)), "0-255"
    if not (finite := np.isfinite(array)).all():
        raise GansweepError(
            f"{where}: {array.size - finite.sum():,} of {array.size:,} values are NaN or infinite: samples of a "
            "generator that diverged; give an epoch's samples from before it did, or leave out --samples"
        )
    low, high = float(array.min()), float(array.max())
    if low >= 0 and high <= 1.01:
        return torch.from_numpy((np.clip(array, 0, 1) * 255).round().astype(np.uint8)), "[0, 1]"
    if low < -1.01 or high > 1.01:
        fix = "as uint8 pixels (a.astype(np.uint8))" if low >= 0 and high <= 255 else "in [-1, 1]"
        raise GansweepError(
            f"{where}: values must lie in [-1, 1] (tanh output) or [0, 1] (ToTensor's), found [{low:.3g}, {high:.3g}]; "
            f"save them {fix}"
        )
    return torch.from_numpy(((np.clip(array, -1, 1) + 1) * 127.5).round().astype(np.uint8)), "[-1, 1]"


def _epoch_of(key: str, path: Path, epochs: list[int], known: set[int]) -> int:
    digits = key.removeprefix("epoch").lstrip("_")
    if not digits.isdigit() or int(digits) not in known:
        raise GansweepError(
            f"{path}: array {key!r} names no epoch of the history; name each array by its epoch "
            f"(e.g. '5' or 'epoch_5'), one of {epochs[0]}-{epochs[-1]}"
        )
    return int(digits)


@dataclass(frozen=True)
class _Array:
    """One epoch's samples in the file, known by its header: its values are read only by ``read``."""

    epoch: int
    where: str
    shape: tuple[int, ...]
    read: Callable[[], np.ndarray]


def _npz_arrays(path: Path, loaded: Any, epochs: list[int]) -> list[_Array]:
    """An .npz's arrays by their headers (each member's first bytes, not its values): a few MB of
    compressed zeros hold GBs of images."""
    if not loaded.files:
        raise GansweepError(f"{path}: the .npz holds no arrays; give one per epoch, named by it ('5' or 'epoch_5')")
    _check_count(path, len(loaded.files))
    arrays: dict[int, _Array] = {}
    known = set(epochs)
    for key in loaded.files:
        epoch, where = _epoch_of(key, path, epochs, known), f"{path}[{key}]"
        if epoch in arrays:
            raise GansweepError(
                f"{path}: arrays {arrays[epoch].where.removeprefix(str(path))[1:-1]!r} and {key!r} both name epoch "
                f"{epoch}; give one array per epoch"
            )
        with loaded.zip.open(key if key in loaded.zip.namelist() else f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(member)
        _check_dtype(dtype, where)
        _check_shape(shape, where)
        arrays[epoch] = _Array(epoch, where, shape, functools.partial(loaded.__getitem__, key))
    return list(arrays.values())


def _npy_arrays(path: Path, loaded: np.ndarray, epochs: list[int], say: Callable[[str], None]) -> list[_Array]:
    """A .npy (mapped: its shape before its values): the last epoch's samples, or a gansweep samples.npy
    of every epoch from 0 (5-d)."""
    _check_dtype(loaded.dtype, str(path))
    if loaded.ndim != 5:
        _check_shape(loaded.shape, str(path))
        return [_Array(epochs[-1], str(path), loaded.shape, lambda: loaded)]
    if loaded.shape[2:] != (1, 28, 28) or loaded.shape[1] < 10:
        raise GansweepError(
            f"{path}: a 5-d array is read as a gansweep samples.npy, (epochs, N, 1, 28, 28) with N >= 10; "
            f"got {loaded.shape}"
        )
    if len(loaded) <= epochs[-1]:
        raise GansweepError(
            f"{path}: holds the samples of epochs 0-{len(loaded) - 1} (a gansweep samples.npy), but the "
            f"history goes to epoch {epochs[-1]}; give the history of the same run"
        )
    _check_shape(loaded.shape[1:], f"{path}[0]")
    _check_count(path, len(epochs))
    say(f"{path}: a gansweep samples.npy (0-255 pixels from epoch 0 on): read as one array per epoch")
    return [_Array(e, f"{path}[{e}]", loaded.shape[1:], functools.partial(loaded.__getitem__, e)) for e in epochs]


def _check_count(path: Path, count: int) -> None:
    if count > MAX_ARRAYS:
        raise GansweepError(
            f"{path}: {count:,} epochs' arrays, more than the {MAX_ARRAYS:,} one diagnose judges (each is an "
            "evaluation of its own); give every few epochs' samples"
        )


def _check_total(path: Path, arrays: list[_Array]) -> None:
    total = sum(a.shape[0] for a in arrays)
    if total > MAX_TOTAL_SAMPLES:
        raise GansweepError(
            f"{path}: {total:,} samples in {len(arrays):,} arrays, more than the {MAX_TOTAL_SAMPLES:,} one diagnose "
            "judges; give fewer epochs' arrays (every few epochs), or fewer samples in each (a sweep judges 256)"
        )


def read_samples(
    path: Path, epochs: list[int], say: Callable[[str], None] = lambda note: None
) -> dict[int, torch.Tensor]:
    """Generated images by epoch: a .npy holds the last epoch's, a .npz one array per epoch, named by it
    ('5' or 'epoch_5', never two for one epoch), so that the verdict can read a trend. Every array's shape
    and type, and the samples in all (``MAX_TOTAL_SAMPLES``), are checked from the file's headers before
    any values are read; then each array as ``_images`` takes it, one at a time. Samples read in another
    range than [-1, 1] are told to ``say``, once per file. Only arrays are read (no pickled objects,
    whatever the file claims to be)."""
    try:
        with path.open("rb") as f:
            start = f.read(6)
    except OSError as error:
        raise GansweepError(f"{path}: cannot read ({error.strerror})") from None
    if not start.startswith((b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06")):  # np.save's; a zip (np.savez)
        raise GansweepError(f"{path}: not a .npy or .npz file; save the samples with np.save or np.savez")
    try:
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)  # a .npy mapped: its shape before its bytes
        with contextlib.ExitStack() as stack:
            if isinstance(loaded, np.ndarray):
                arrays = _npy_arrays(path, loaded, epochs, say)
            else:
                arrays = _npz_arrays(path, stack.enter_context(loaded), epochs)
            _check_total(path, arrays)
            read = {a.epoch: _images(a.read(), a.where) for a in arrays}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        objects = "pickle" in str(error) or "Python objects" in str(error)
        reason = "it holds Python objects, which are not read" if objects else str(error)
        raise GansweepError(f"{path}: not a readable .npy or .npz array ({reason})") from None
    own = isinstance(loaded, np.ndarray) and loaded.ndim == 5  # its note said how it is read
    for scale, count in Counter(scale for _, scale in read.values() if scale != "[-1, 1]" and not own).items():
        which = f"{count} of its {len(read)} arrays are" if len(read) > 1 else "the samples are"
        say(f"{path}: {which} in {scale}, not [-1, 1]: read as such ({SCALES[scale]})")
    return {epoch: images for epoch, (images, _) in read.items()}


SCALES = {"[0, 1]": "0 black, 1 white: torchvision's ToTensor range", "0-255": "pixels, 0 black, 255 white"}
"""How ``_images`` read samples in a range other than [-1, 1], as the note says it."""
