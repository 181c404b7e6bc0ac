"""Whole processes, imports included, side by side in one run: the seed notebooks' loop as a script
against `gansweep train`, both fp32 on the CPU, `cs231n-mlp` on mnist-5k for 8 epochs.

The notebook side (``--notebook``) is ``bench_trainer.reference_loop`` (per-item PIL transforms, a
shuffling DataLoader, ``.item()`` on both losses every step) run for the epochs, on the same networks,
with the notebooks' default Adam; the gansweep side is ``python -m gansweep.cli train --model cs231n-mlp --dataset mnist-5k
--epochs 8 --device cpu``. The two alternate, ``--repeats`` times each; it prints each side's median wall
time and their ratio.

    .venv/bin/python benchmarks/bench_process.py              # 3 repeats
    .venv/bin/python benchmarks/bench_process.py --epochs 1 --repeats 1 --json   # that it runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._args import EPOCHS, MOST_REPEATS, Parser, whole  # noqa: E402

MODEL = "cs231n-mlp"


def notebook(epochs: int) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torchvision  # noqa: F401  (the notebooks import it for their data set and transforms)
    from bench_trainer import reference_loop

    from gansweep.data import load_dataset
    from gansweep.hparams import resolve_hyperparameters
    from gansweep.trainer import Trainer

    digits = load_dataset("mnist-5k")
    hp = resolve_hyperparameters(MODEL, {"epochs": epochs})
    trainer = Trainer(MODEL, digits, hp, 0, "cpu", False, [])  # its networks, not its loop or optimizers
    for _ in range(epochs):
        reference_loop(trainer, digits.train_images, steps=len(digits.train_images))


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=whole(1, EPOCHS), default=8)
    parser.add_argument("--repeats", type=whole(1, MOST_REPEATS), default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--notebook", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.notebook:
        notebook(args.epochs)
        return
    sides = {
        "notebook": [sys.executable, __file__, "--notebook", "--epochs", str(args.epochs)],
        "gansweep": [sys.executable, "-m", "gansweep.cli", "train", "--model", MODEL, "--dataset", "mnist-5k"]
        + ["--epochs", str(args.epochs), "--device", "cpu"],
    }
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(args.repeats):
        for side, command in sides.items():
            times[side].append(_timed(command))
    medians = {side: statistics.median(t) for side, t in times.items()}
    result = {
        "epochs": args.epochs,
        "seconds": {side: [round(t, 2) for t in ts] for side, ts in times.items()},
        "ratio": round(medians["notebook"] / medians["gansweep"], 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{MODEL}, mnist-5k, {args.epochs} epochs, fp32, whole processes: notebook {medians['notebook']:.2f} s, "
        f"gansweep train {medians['gansweep']:.2f} s (median of {args.repeats}): {result['ratio']}x"
    )


if __name__ == "__main__":
    main()
