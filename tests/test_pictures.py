from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import pytest

from gansweep.data import Digits
from gansweep.diagnostics import diagnose
from gansweep.hparams import resolve_hyperparameters
from gansweep.pictures import generator_pictures, snapshot_epochs, trial_pictures
from gansweep.trainer import Trainer


def test_snapshot_epochs_follow_report_000() -> None:
    assert snapshot_epochs(40, 10) == [0, 10, 20, 30, 40]
    assert snapshot_epochs(5, 10) == [0, 5]


def _trained(digits, model: str) -> Trainer:
    small = Digits("slice", digits.train_images[:600], digits.train_labels[:600], digits.heldout_images, digits.heldout_labels)
    trainer = Trainer(model, small, resolve_hyperparameters(model, {"epochs": 2, "batch_size": 100}), device="cpu")
    trainer.fit()
    return trainer


def test_history_pictures(digits, tmp_path: Path) -> None:
    trainer = _trained(digits, "mlp")
    paths = trial_pictures(trainer.history, diagnose(trainer.history.epochs).flags, tmp_path, snapshot_every=1)
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert names == {"grids/epoch_000.png", "grids/epoch_001.png", "grids/epoch_002.png", "samples_strip.png",
                     "samples.gif", "loss.png", "probability.png"}  # fmt: skip
    grid = iio.imread(tmp_path / "grids" / "epoch_002.png")
    assert grid.shape[1] == 10 * 30 + 2 and grid.shape[0] > grid.shape[1]  # 10 columns of 28 px + caption
    assert iio.imread(tmp_path / "samples.gif").shape[0] == 3  # epochs 0, 1, 2
    strip = iio.imread(tmp_path / "samples_strip.png")
    assert strip.shape[1] == 3 * grid.shape[1] + 2 * 8


@pytest.mark.parametrize(("model", "expected"), [
    ("infogan28", {"interpolation.png", "infogan_c1.png", "infogan_c2.png", "infogan_c3.png"}),
    ("cgan", {"interpolation.png", "class_rows.png"}),
    ("mlp", {"interpolation.png"}),
])  # fmt: skip
def test_generator_pictures(digits, tmp_path: Path, model: str, expected: set[str]) -> None:
    paths = generator_pictures(_trained(digits, model), tmp_path)
    assert {p.name for p in paths} == expected
    for path in paths:
        image = iio.imread(path)
        assert image.shape[1] == 10 * 30 + 2 and image.std() > 0
