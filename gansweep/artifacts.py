"""A trial's history and samples as files: what ``gansweep train --out`` writes and tracking uploads."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from gansweep.trainer import History


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


def write_history(history: History, out: Path) -> list[Path]:
    """Writes history.json, epochs.csv, steps.csv, samples.npy and samples_final.png into ``out``."""
    import imageio.v3 as iio

    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history.to_dict(), indent=1))
    _write_csv(out / "epochs.csv", history.epochs)
    steps = [
        {"step": i + 1, **dict(zip(history.steps, values))} for i, values in enumerate(zip(*history.steps.values()))
    ]
    _write_csv(out / "steps.csv", steps)
    np.save(out / "samples.npy", torch.stack(history.samples).numpy())
    iio.imwrite(out / "samples_final.png", sample_grid(history.samples[-1]))
    return [out / name for name in ("history.json", "epochs.csv", "steps.csv", "samples.npy", "samples_final.png")]
