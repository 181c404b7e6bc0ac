"""Trains the real-run regression set of the verdicts (tests/diagnostics_tests/real_runs/) on the CPU.

Each run in ``runs.json`` is a real training of a zoo model on mnist-5k. What is kept is its per-epoch
history (losses, no sample metrics) and, at every evaluation, the uint8 samples the sweep's evaluator
would judge (same latents, same count). ``tests/diagnostics_tests/test_real_runs.py`` recomputes the
metrics from those samples with the current judge and checks the verdict at each of the run's
``checks`` (a prefix of the run: training does not depend on how long it goes on) against what a person
sees in its grids (``sees``). ``--grids DIR`` draws those grids (the first 64 samples per evaluation).

    .venv/bin/python scripts/regression_runs.py                    # all runs (~6 minutes on 2 cores)
    .venv/bin/python scripts/regression_runs.py healthy --grids /tmp/grids
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from gansweep.data import load_dataset
from gansweep.diagnostics.evaluate import EVAL_SAMPLES, EVAL_SEED_OFFSET, evaluated
from gansweep.hparams import resolve_hyperparameters
from gansweep.trainer import Trainer, TrainerCallback, generate

FOLDER = Path(__file__).resolve().parent.parent / "tests" / "diagnostics_tests" / "real_runs"

RUNS: dict[str, dict] = json.loads((FOLDER / "runs.json").read_text())


class _Keep(TrainerCallback):
    """The samples ``SampleEvaluator`` would judge, at the epochs it would judge them."""

    def __init__(self, every: int) -> None:
        self.every, self.epochs, self.samples = every, [], []

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        if evaluated(trainer.epoch, self.every, trainer.hp.epochs):
            self.epochs.append(trainer.epoch)
            self.samples.append(generate(trainer, EVAL_SAMPLES, seed=trainer.seed + EVAL_SEED_OFFSET).numpy())


def train(name: str, run: dict, folder: Path = FOLDER) -> Path:
    digits = load_dataset("mnist-5k")
    hp = resolve_hyperparameters(run["model"], {**run["hyperparameters"], "epochs": run["epochs"]})
    keep = _Keep(run["eval_every"])
    history = Trainer(run["model"], digits, hp, seed=run["seed"], device="cpu", callbacks=[keep]).fit()
    path = folder / f"{name}.npz"
    np.savez_compressed(
        path, history=json.dumps(history.epochs), epochs=np.array(keep.epochs), samples=np.stack(keep.samples)
    )
    return path


def draw_grids(name: str, folder: Path, out: Path) -> Path:
    """One PNG per run: the first 64 samples of every evaluation, 8x8 each, left to right."""
    from PIL import Image

    stored = np.load(folder / f"{name}.npz")
    tiles = [
        np.pad(s[:64, 0].reshape(8, 8, 28, 28).transpose(0, 2, 1, 3).reshape(224, 224), 4, constant_values=255)
        for s in stored["samples"]
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="runs to train (default: all)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: the stored runs were made with 1, and another count changes the float results)",
    )
    parser.add_argument("--out", type=Path, default=FOLDER)
    parser.add_argument("--grids", type=Path, help="draw the stored runs' grids here instead of training")
    args = parser.parse_args()
    if unknown := [n for n in args.names if n not in RUNS]:
        parser.error(f"no run named {', '.join(unknown)} in {FOLDER / 'runs.json'}; choose from: {', '.join(RUNS)}")
    torch.set_num_threads(args.threads)
    for name in args.names or RUNS:
        if args.grids:
            print(draw_grids(name, args.out, args.grids))
            continue
        path = train(name, RUNS[name], args.out)
        print(f"{name}: {path} ({path.stat().st_size / 1e3:.0f} kB)", flush=True)
