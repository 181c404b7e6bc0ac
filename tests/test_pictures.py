from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
import pytest

from gansweep.artifacts import sample_grid
from gansweep.data import Digits
from gansweep.diagnostics import Flag, diagnose
from gansweep.hparams import resolve_hyperparameters
from gansweep.pictures import generator_pictures, loss_figure, metric_figure, snapshot_epochs, trial_pictures
from gansweep.trainer import History, Trainer

CAPTION = 30
"""Pixel rows of the caption band above a grid."""


def test_snapshot_epochs_follow_report_000() -> None:
    assert snapshot_epochs(40, 10) == [0, 10, 20, 30, 40]
    assert snapshot_epochs(5, 10) == [0, 5]


def _trained(digits, model: str) -> Trainer:
    small = Digits(
        "slice", digits.train_images[:600], digits.train_labels[:600], digits.heldout_images, digits.heldout_labels
    )
    trainer = Trainer(model, small, resolve_hyperparameters(model, {"epochs": 2, "batch_size": 100}), device="cpu")
    trainer.fit()
    return trainer


def _cells(image: np.ndarray, rows: int) -> np.ndarray:
    """The (rows, 10) cells of 28 px of a grid picture, below its caption."""
    assert image.shape == (CAPTION + rows * 30 + 2, 10 * 30 + 2)
    grid = image[CAPTION:]
    return np.stack([[grid[2 + 30 * r :][:28, 2 + 30 * c :][:, :28] for c in range(10)] for r in range(rows)])


def test_history_pictures(digits, tmp_path: Path) -> None:
    history = _trained(digits, "mlp").history
    paths = trial_pictures(history, diagnose(history.epochs).flags, tmp_path, snapshot_every=1)
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert names == {
        "grids/epoch_000.png",
        "grids/epoch_001.png",
        "grids/epoch_002.png",
        "samples_strip.png",
        "samples.gif",
        "loss.png",
        "probability.png",
    }
    grids = [iio.imread(tmp_path / "grids" / f"epoch_{e:03d}.png") for e in (0, 1, 2)]
    for epoch, grid in enumerate(grids):  # each epoch's own samples, 10 x 10, below its caption
        assert np.array_equal(grid[CAPTION:], sample_grid(history.samples[epoch]))
    assert iio.imread(tmp_path / "samples.gif").shape[0] == 3  # epochs 0, 1, 2
    gutter = np.full((len(grids[0]), 8), 255, np.uint8)
    strip = np.concatenate([grids[0], gutter, grids[1], gutter, grids[2]], axis=1)  # one panel per snapshot epoch
    assert np.array_equal(iio.imread(tmp_path / "samples_strip.png"), strip)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("infogan28", {"interpolation.png", "infogan_c1.png", "infogan_c2.png", "infogan_c3.png"}),
        ("cgan", {"interpolation.png", "class_rows.png"}),
        ("mlp", {"interpolation.png"}),
    ],
)
def test_generator_pictures(digits, tmp_path: Path, model: str, expected: set[str]) -> None:
    paths = generator_pictures(_trained(digits, model), tmp_path)
    assert {p.name for p in paths} == expected
    for path in paths:
        rows = 8 if path.name == "interpolation.png" else 10
        cells = _cells(iio.imread(path), rows)
        # every cell its own latent: no two alike (a code or a λ that is not applied repeats cells)
        assert len({cell.tobytes() for cell in cells.reshape(-1, 28, 28)}) == rows * 10
    lines = _cells(iio.imread(tmp_path / "interpolation.png"), 8).astype(float)
    steps = np.abs(np.diff(lines, axis=1)).mean(axis=(2, 3)).max(axis=1)
    ends = np.abs(lines[:, -1] - lines[:, 0]).mean(axis=(1, 2))
    assert (steps < ends).all()  # each row walks from one end to the other in small steps


def test_loss_curves_mark_and_name_each_flag_onset() -> None:
    epochs = [
        {
            "epoch": e,
            "d_loss": 0.0 if e >= 4 else 1.0,
            "g_loss": 50.0 if e >= 4 else 1.0,
            "d_fake": 0.0 if e >= 4 else 0.4,
        }
        for e in range(1, 11)
    ]
    history = History(
        steps={key: [r[key] for r in epochs for _ in range(3)] for key in ("d_loss", "g_loss")}, epochs=epochs
    )
    flags = [*diagnose(epochs).flags, Flag("unstable", 7, "G-loss std 4x the median window")]
    assert [(f.name, f.epoch) for f in flags] == [("d_collapse", 4), ("unstable", 7)]
    figure = loss_figure(history, flags)
    ax = figure.axes[0]
    onsets = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--")
    names = sorted((text.get_position()[0], text.get_text().strip()) for text in ax.texts)
    plt.close(figure)
    assert onsets == [4, 7] and names == [(4, "d_collapse @ 4"), (7, "unstable @ 7")]


def test_flags_with_one_onset_share_a_label_that_names_both() -> None:
    epochs = [{"epoch": e, "d_loss": 1.0, "g_loss": 1.0} for e in range(1, 5)]
    history = History(steps={key: [1.0] * 8 for key in ("d_loss", "g_loss")}, epochs=epochs)
    flags = [Flag("d_collapse", 2, "D wins"), Flag("mode_collapse", 2, "3/10 digits"), Flag("unstable", 3, "std")]
    figure = loss_figure(history, flags)
    ax = figure.axes[0]
    onsets = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--")
    names = sorted((text.get_position()[0], text.get_text().strip()) for text in ax.texts)
    plt.close(figure)
    assert onsets == [2, 3] and names == [(2, "d_collapse, mode_collapse @ 2"), (3, "unstable @ 3")]


def test_metrics_png_leaves_out_what_the_judge_cannot_read() -> None:
    """The quickstart's lr 2e-4 batch 256 trial: fid_mnist 1376 (the unreadable constant) at epochs 1-4 and a
    class count of noise at 5 (confidence 0.19): shaded, not plotted as measurements."""
    unread = {"fid_mnist": 1376.3, "modes_covered": 1, "confidence": 0.10, "readable": 0.0}
    read = {"fid_mnist": 300.0, "modes_covered": 9, "confidence": 0.8, "readable": 1.0}
    history = History(
        epochs=[
            {"epoch": 1, **unread},
            {"epoch": 2, **unread | {"confidence": 0.19, "readable": 1.0}},
            {"epoch": 3, **read},
        ]
    )
    left, right = metric_figure(history).axes
    fid, digits = left.lines[0].get_ydata(), right.lines[0].get_ydata()
    assert np.isnan(fid[:2]).all() and fid[2] == 300.0 and np.isnan(digits[:2]).all() and digits[2] == 9
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["samples unreadable: not plotted"]
