"""Filling the cores: the same sweep with one worker (a process using every core's thread) against one
worker per core (each a process with one thread), side by side in one run, on the CPU.

Two sweeps: the quickstart (4 dcgan28 width-32 trials, 5 epochs) and a cs231n-mlp grid (4 trials).
Each is trained from an empty store once per layout; it prints trials per hour and whole-sweep wall
time per layout. ``--workers auto`` (``commands.auto_workers``) is what these numbers chose.

    .venv/bin/python benchmarks/bench_workers.py            # both sweeps, both layouts
    .venv/bin/python benchmarks/bench_workers.py --sweeps cs231n-mlp --epochs 20   # longer trials
    .venv/bin/python benchmarks/bench_workers.py --quick --json   # 1 epoch: that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gansweep  # noqa: E402
from gansweep.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MLP = {
    "name": "cs231n-mlp",
    "epochs": 5,
    "device": "cpu",
    "models": [{"model": "cs231n-mlp", "grid": {"lr": [1.0e-3, 5.0e-3], "batch_size": [64, 128]}}],
}


def _grids(epochs: int | None) -> dict[str, dict]:
    quickstart = load_config(ROOT / "sweeps" / "quickstart.yaml").model_dump(exclude_defaults=True)
    grids = {"quickstart": quickstart, "cs231n-mlp": MLP}
    return {name: {**grid, "epochs": epochs or grid["epochs"]} for name, grid in grids.items()}


def _timed(grid: dict, workers: int, store: Path) -> tuple[float, int]:
    """(wall seconds, trials) of the whole sweep."""
    start = time.perf_counter()
    sweep = gansweep.run(grid, progress=False, store=store, workers=workers)
    return time.perf_counter() - start, len(sweep.plans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, help="epochs a trial instead of the sweeps' own 5")
    parser.add_argument("--sweeps", nargs="+", default=["quickstart", "cs231n-mlp"])
    parser.add_argument("--quick", action="store_true", help="1 epoch a trial: that it runs, not a measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        grids = _grids(1 if args.quick else args.epochs)
        for name, grid in ((n, grids[n]) for n in args.sweeps):
            for workers in sorted({1, cores}):
                seconds, trials = _timed(grid, workers, Path(tmp) / f"{name}-{workers}")
                results[f"{name} x{workers}"] = {
                    "workers": workers,
                    "threads_each": max(1, cores // workers),
                    "trials": trials,
                    "wall_s": round(seconds, 1),
                    "trials_per_hour": round(trials * 3600 / seconds, 1),
                }
    if args.json:
        print(json.dumps({"cores": cores, "results": results}))
        return
    for case, r in results.items():
        print(
            f"{case:<16} {r['workers']} worker(s) x {r['threads_each']} thread(s): {r['trials']} trials in "
            f"{r['wall_s']:.0f} s = {r['trials_per_hour']:.0f} trials/hour"
        )


if __name__ == "__main__":
    main()
