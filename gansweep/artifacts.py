"""A trial's history and samples as files: what ``gansweep train --out`` writes and tracking uploads."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from gansweep.trainer import STEP_METRICS, History

HISTORY_FILE = "history.json"
SAMPLES_FILE = "samples.npy"


FINAL_SCALE = 2
"""``samples_final.png`` is the picture a person opens to judge a trial: at 1:1 its 28-pixel digits made a
302-pixel image, too small to see copies in; each pixel is drawn as a 2x2 block (kept sharp)."""


def sample_grid(images: torch.Tensor, nrow: int = 10, pad: int = 2) -> np.ndarray:
    """uint8 (N, 1, H, W) -> one uint8 (rows*(H+pad)+pad, nrow*(W+pad)+pad) picture, white gutters."""
    n, _, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=np.uint8)
    for i, image in enumerate(images.numpy()):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad) :][:h, pad + c * (w + pad) :][:, :w] = image[0]
    return grid


def _write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as f:
        columns = list(dict.fromkeys(key for row in rows for key in row)) or ["epoch"]  # evaluated epochs add metrics
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _replace(partial: Path, write) -> Path:
    """Writes through ``partial`` (``path.partial``) and moves it into place: never a torn file."""
    with partial.open("wb") as f:
        write(f)
    return partial.replace(partial.with_suffix(""))


def write_history_json(history: History, out: Path) -> Path:
    text = json.dumps(history.to_dict(), indent=1).encode()
    return _replace(out / (HISTORY_FILE + ".partial"), lambda f: f.write(text))


def write_samples(history: History, out: Path) -> Path:
    """uint8 (epochs + 1, N, 1, H, W): the fixed-latent samples before training and after each epoch."""
    samples = torch.stack(history.samples).numpy()
    return _replace(out / (SAMPLES_FILE + ".partial"), lambda f: np.save(f, samples))


def read_history(folder: Path) -> History:
    """The history that ``write_history_json`` and ``write_samples`` wrote into ``folder``."""
    saved = json.loads((folder / HISTORY_FILE).read_text())
    samples = np.load(folder / SAMPLES_FILE)
    steps = {key: list(saved["steps"][key]) for key in STEP_METRICS}
    return History(
        steps=steps, epochs=saved["epochs"], samples=list(torch.from_numpy(samples)), stopped=saved["stopped"]
    )


def write_history(history: History, out: Path) -> list[Path]:
    """Writes history.json, epochs.csv, steps.csv, samples.npy and samples_final.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_history_json(history, out)
    _write_csv(out / "epochs.csv", history.epochs)
    steps = [
        {"step": i + 1, **dict(zip(history.steps, values))} for i, values in enumerate(zip(*history.steps.values()))
    ]
    _write_csv(out / "steps.csv", steps)
    write_samples(history, out)
    grid = sample_grid(history.samples[-1])
    iio.imwrite(out / "samples_final.png", grid.repeat(FINAL_SCALE, 0).repeat(FINAL_SCALE, 1))
    return [out / name for name in ("history.json", "epochs.csv", "steps.csv", "samples.npy", "samples_final.png")]
