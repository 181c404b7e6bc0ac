"""A trial's files as a person opens them."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import torch

from gansweep.artifacts import FINAL_SCALE, sample_grid, write_history
from gansweep.trainer import History


def test_the_final_sample_grid_is_drawn_large_enough_to_see_copies_and_sharp(tmp_path: Path) -> None:
    """At 1:1 a 10x10 grid of 28-pixel digits was 302 pixels wide (issue 31); each pixel is now a block."""
    samples = torch.randint(0, 256, (100, 1, 28, 28), dtype=torch.uint8)
    history = History(epochs=[{"epoch": 1, "d_loss": 1.0}], samples=[samples])
    write_history(history, tmp_path)
    picture = iio.imread(tmp_path / "samples_final.png")
    grid = sample_grid(samples)
    assert picture.shape == (302 * FINAL_SCALE, 302 * FINAL_SCALE)
    assert (picture[::FINAL_SCALE, ::FINAL_SCALE] == grid).all() and (
        picture[1::FINAL_SCALE, 1::FINAL_SCALE] == grid
    ).all()
