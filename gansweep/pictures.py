"""The figures the seed reports made by hand, made for every trial.

From the history: sample grids of the fixed latent vectors (epoch 0, every ``snapshot_every`` epochs,
the last), a strip of them side by side, a GIF, loss curves with flag onsets marked, D(x) / D(G(z))
per epoch, and metrics over epochs. From the trained generator: latent interpolations, InfoGAN's
Figure 2 panels and one row per class for the conditional GAN.

File names and figure layouts are the same in every run, so runs compare side by side in MLflow.
"""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gansweep.artifacts import sample_grid
from gansweep.diagnostics import Flag, illegible
from gansweep.models import N_CLASSES, N_CONTINUOUS, Latent
from gansweep.trainer import History, Trainer, render

FLAG_COLOURS = {
    "diverged": "black",
    "d_collapse": "tab:red",
    "mode_collapse": "tab:purple",
    "unstable": "tab:orange",
    "low_quality": "tab:brown",
}


def snapshot_epochs(n_epochs: int, every: int) -> list[int]:
    """Epoch 0, every ``every`` epochs, and the last (000 "d": 0/10/20/30/40)."""
    return sorted({0, n_epochs, *range(every, n_epochs + 1, every)})


def _save_png(path: Path, image: np.ndarray) -> Path:
    iio.imwrite(path, image)
    return path


def _labelled(grid: np.ndarray, text: str) -> np.ndarray:
    """A grid with a caption band on top (drawn with matplotlib's text, rasterised)."""
    fig = Figure(figsize=(grid.shape[1] / 100, 0.3), dpi=100)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    band = np.asarray(canvas.buffer_rgba())[..., :3].mean(axis=2).astype(np.uint8)
    band = band[:, : grid.shape[1]]
    if band.shape[1] < grid.shape[1]:
        band = np.pad(band, ((0, 0), (0, grid.shape[1] - band.shape[1])), constant_values=255)
    return np.concatenate([band, grid])


def sample_pictures(history: History, folder: Path, every: int) -> list[Path]:
    """grids/epoch_NNN.png, samples_strip.png and samples.gif from the fixed-latent samples."""
    (folder / "grids").mkdir(parents=True, exist_ok=True)
    frames = [_labelled(sample_grid(s), f"epoch {e}") for e, s in enumerate(history.samples)]
    grids = {e: frames[e] for e in snapshot_epochs(len(frames) - 1, every)}
    paths = [_save_png(folder / "grids" / f"epoch_{e:03d}.png", g) for e, g in grids.items()]
    gutter = np.full((next(iter(grids.values())).shape[0], 8), 255, np.uint8)
    strip = np.concatenate([part for g in grids.values() for part in (g, gutter)][:-1], axis=1)
    paths.append(_save_png(folder / "samples_strip.png", strip))
    iio.imwrite(folder / "samples.gif", np.stack(frames), duration=400, loop=0)
    paths.append(folder / "samples.gif")
    return paths


def loss_figure(history: History, flags: list[Flag]) -> Figure:
    """G and D loss per step (light) and per epoch (bold), each flag's onset marked and named."""
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    n_steps = len(history.steps["d_loss"])
    n_epochs = len(history.epochs)
    x_steps = np.arange(1, n_steps + 1) / max(n_steps / max(n_epochs, 1), 1)
    epochs = [r["epoch"] for r in history.epochs]
    for key, colour, name in (("d_loss", "tab:blue", "D loss"), ("g_loss", "tab:green", "G loss")):
        ax.plot(x_steps, history.steps[key], color=colour, alpha=0.25, linewidth=0.8)
        ax.plot(
            epochs, [r[key] for r in history.epochs], color=colour, linewidth=2.2, marker="o", markersize=3, label=name
        )
    onsets: dict[int, list[str]] = {}
    for flag in flags:
        if flag.epoch is not None:
            onsets.setdefault(flag.epoch, []).append(flag.name)
    for epoch, names in onsets.items():  # one line and one label per onset: two labels there would overlap
        colour = FLAG_COLOURS.get(names[0], "gray")
        ax.axvline(epoch, color=colour, linestyle="--", linewidth=1.4)
        ax.text(
            epoch, ax.get_ylim()[1], f" {', '.join(names)} @ {epoch}", color=colour, va="top", fontsize=9, rotation=90
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Loss (per step light, per epoch bold)")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def loss_curves(history: History, flags: list[Flag], path: Path) -> Path:
    """``loss_figure`` saved as ``path``."""
    fig = loss_figure(history, flags)
    fig.savefig(path, dpi=100)
    return path


def probability_curves(history: History, path: Path) -> Path:
    """Mean D(x) and D(G(z)) per epoch (report 001, Figure 21 'Probability')."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    epochs = [r["epoch"] for r in history.epochs]
    ax.plot(epochs, [r["d_real"] for r in history.epochs], marker="o", markersize=3, label="D(x)")
    ax.plot(epochs, [r["d_fake"] for r in history.epochs], marker="o", markersize=3, label="D(G(z))")
    ax.set_xlabel("epoch")
    ax.set_ylabel("probability")
    ax.set_title("Discriminator output")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def metric_curves(history: History, path: Path) -> Path | None:
    """``metric_figure`` saved to ``path``; None when nothing was evaluated."""
    if not any("fid_mnist" in r for r in history.epochs):
        return None
    metric_figure(history).savefig(path, dpi=100)
    return path


def metric_figure(history: History) -> Figure:
    """fid_mnist and modes_covered at each evaluated epoch. Epochs whose samples the judge cannot read are
    shaded and left out of both curves: its figures of them (fid_mnist 1376, a constant, and a class count
    of noise) measure nothing."""
    evals = [r for r in history.epochs if "fid_mnist" in r]
    fig = Figure(figsize=(7, 4))
    left = fig.subplots()
    epochs = [r["epoch"] for r in evals]
    read = [not illegible(r) for r in evals]
    for epoch in (e for e, ok in zip(epochs, read) if not ok):
        left.axvspan(epoch - 0.5, epoch + 0.5, color="0.85", lw=0)
    if not all(read):
        left.axvspan(0, 0, color="0.85", label="samples unreadable: not plotted")
        left.legend(loc="upper right")
    left.plot(epochs, [r["fid_mnist"] if ok else math.nan for r, ok in zip(evals, read)], color="tab:red", marker="o")
    left.set_xlabel("epoch")
    left.set_ylabel("fid_mnist (lower is better)", color="tab:red")
    right = left.twinx()
    digits = [r["modes_covered"] if ok else math.nan for r, ok in zip(evals, read)]
    right.plot(epochs, digits, color="tab:blue", marker="s")
    right.set_ylim(0, 10.5)
    right.set_ylabel("digits covered (of 10)", color="tab:blue")
    left.set_title("Sample quality over training")
    left.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _interpolate(trainer: Trainer, pairs: int, steps: int, seed: int) -> torch.Tensor:
    rng = torch.Generator(trainer.device).manual_seed(seed)
    ends = trainer.spec.sample_latent(2 * pairs, trainer.hp.latent_dim, rng, trainer.device)
    lam = torch.linspace(0, 1, steps, device=trainer.device).view(1, steps, 1)
    a, b = ends.z[:pairs, None], ends.z[pairs:, None]
    z = ((1 - lam) * a + lam * b).reshape(pairs * steps, -1)
    labels = None if ends.labels is None else ends.labels[:pairs].repeat_interleave(steps)
    return render(trainer, Latent(z, labels))


def generator_pictures(trainer: Trainer, folder: Path, seed: int = 7) -> list[Path]:
    """Pictures that need the trained generator (interpolation; InfoGAN and cGAN panels)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        _save_png(folder / "interpolation.png", _labelled(sample_grid(_interpolate(trainer, 8, 10, seed)), "λ = 0 … 1"))
    ]
    if trainer.spec.conditioning == "label":
        labels = torch.arange(N_CLASSES, device=trainer.device).repeat_interleave(10)
        latent = trainer.spec.sample_latent(
            100, trainer.hp.latent_dim, torch.Generator(trainer.device).manual_seed(seed), trainer.device, labels
        )
        paths.append(
            _save_png(
                folder / "class_rows.png", _labelled(sample_grid(render(trainer, latent)), "one row per label 0 … 9")
            )
        )
    if trainer.spec.conditioning == "info":
        paths += _infogan_panels(trainer, folder, seed)
    return paths


def _infogan_panels(trainer: Trainer, folder: Path, seed: int) -> list[Path]:
    """InfoGAN Figure 2: (a) c1 varies along a row (one digit type per column, shared noise per row);
    (c)/(d) c2 / c3 from -2 to 2 along a row (rows: c1 = 0 … 9)."""
    rng = torch.Generator(trainer.device).manual_seed(seed)
    d, dev = trainer.hp.latent_dim, trainer.device
    noise_rows = trainer.spec.sample_latent(10, d, rng, dev).z[:, :d]
    one_hot = torch.eye(N_CLASSES, device=dev)

    def z(noise: torch.Tensor, codes: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        return torch.cat([noise, codes, continuous], dim=1)

    noise = noise_rows.repeat_interleave(10, dim=0)
    c1 = z(noise, one_hot.repeat(10, 1), torch.zeros(100, N_CONTINUOUS, device=dev))
    paths = [
        _save_png(
            folder / "infogan_c1.png", _labelled(sample_grid(render(trainer, Latent(c1))), "c1 varies along each row")
        )
    ]
    sweep = torch.linspace(-2, 2, 10, device=dev)
    shared = noise_rows[:1].expand(100, d)
    for i, name in enumerate(("c2", "c3")):
        continuous = torch.zeros(100, N_CONTINUOUS, device=dev)
        continuous[:, i] = sweep.repeat(10)
        latent = Latent(z(shared, one_hot.repeat_interleave(10, dim=0), continuous))
        image = _labelled(sample_grid(render(trainer, latent)), f"{name} from -2 to 2 along each row; c1 per row")
        paths.append(_save_png(folder / f"infogan_{name}.png", image))
    return paths


def trial_pictures(history: History, flags: list[Flag], folder: Path, snapshot_every: int) -> list[Path]:
    """Every history-based picture of a trial, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = sample_pictures(history, folder, snapshot_every)
    paths += [loss_curves(history, flags, folder / "loss.png"), probability_curves(history, folder / "probability.png")]
    metrics = metric_curves(history, folder / "metrics.png")
    return paths + ([metrics] if metrics else [])
