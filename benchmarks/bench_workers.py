"""Filling the cores: the same sweep with one worker (a process using every core's thread) against one
worker per core (each a process with one thread), side by side in one run, on the CPU, and which
``--workers auto`` picks (``gansweep.sweep._layout.auto_workers``; a third layout, timed too, where it
picks one in between on more cores).

Three sweeps: the quickstart (4 dcgan28 width-32 trials, 5 epochs), and a cs231n-mlp grid (4 trials)
of 5 and of 40 epochs, all with ``early_stop: []`` (the same epochs trained both ways). Each is trained
from an empty store once per layout; it prints whole-sweep wall time and trials per hour per layout,
auto's pick and whether it was the faster (within 5 %).

    .venv/bin/python benchmarks/bench_workers.py            # all three sweeps, both layouts
    .venv/bin/python benchmarks/bench_workers.py --sweeps cs231n-mlp --epochs 20   # other trial lengths
    .venv/bin/python benchmarks/bench_workers.py --quick --json   # 1 epoch: that it runs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gansweep  # noqa: E402
from benchmarks._args import EPOCHS, Parser, whole  # noqa: E402
from gansweep.config import load_config, plan_trials  # noqa: E402
from gansweep.data import TRAIN_SIZES  # noqa: E402
from gansweep.sweep._layout import auto_workers, cores  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MLP = {
    "name": "cs231n-mlp",
    "epochs": 5,
    "device": "cpu",
    "models": [{"model": "cs231n-mlp", "grid": {"lr": [1.0e-3, 5.0e-3], "batch_size": [64, 128]}}],
}


SWEEPS = ("quickstart", "cs231n-mlp", "cs231n-mlp-long")


def _grids(epochs: int | None) -> dict[str, dict]:
    quickstart = load_config(ROOT / "sweeps" / "quickstart.yaml").model_dump(exclude_defaults=True)
    grids = {"quickstart": quickstart, "cs231n-mlp": MLP, "cs231n-mlp-long": {**MLP, "epochs": 40}}
    # Every epoch trained in both layouts: early stopping would stop a collapsing trial at an epoch that
    # depends on the thread count (1 and 2 threads sum floats in other orders), and time different work.
    return {name: {**grid, "epochs": epochs or grid["epochs"], "early_stop": []} for name, grid in grids.items()}


def _auto(grid: dict, folder: Path) -> int:
    """What ``--workers auto`` starts for this sweep from an empty store."""
    path = folder / "grid.yaml"
    path.write_text(json.dumps(grid))
    config = load_config(path)
    return auto_workers(plan_trials(config, TRAIN_SIZES[config.dataset]), TRAIN_SIZES[config.dataset], cores())


def _timed(grid: dict, workers: int, store: Path) -> tuple[float, int]:
    """(wall seconds, trials) of the whole sweep."""
    start = time.perf_counter()
    sweep = gansweep.run(grid, progress=False, store=store, workers=workers)
    return time.perf_counter() - start, len(sweep.plans)


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--epochs", type=whole(1, EPOCHS), help="epochs a trial instead of each sweep's own (5, 5 and 40)"
    )
    parser.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=list(SWEEPS))
    parser.add_argument("--quick", action="store_true", help="1 epoch a trial: that it runs, not a measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick and args.epochs is not None:
        parser.error("--epochs and --quick: give one (--quick trains 1 epoch a trial)")
    available = cores()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        grids = _grids(1 if args.quick else args.epochs)
        for name, grid in ((n, grids[n]) for n in args.sweeps):
            layouts = {}
            auto = _auto(grid, Path(tmp))
            for workers in sorted({1, available, auto}):  # auto may pick a third layout on more cores
                seconds, trials = _timed(grid, workers, Path(tmp) / f"{name}-{workers}")
                layouts[workers] = {
                    "threads_each": max(1, available // min(workers, trials)),
                    "trials": trials,
                    "wall_s": round(seconds, 1),
                    "trials_per_hour": round(trials * 3600 / seconds, 1),
                }
            fastest = min(r["wall_s"] for r in layouts.values())
            results[name] = {
                "auto": auto,
                "auto_fastest": layouts[auto]["wall_s"] <= 1.05 * fastest,
                "layouts": layouts,
            }
    if args.json:
        print(json.dumps({"cores": available, "results": results}))
        return
    for name, result in results.items():
        for workers, r in result["layouts"].items():
            pick = "  <- auto" if workers == result["auto"] else ""
            print(
                f"{name:<16} {workers} worker(s) x {r['threads_each']} thread(s): {r['trials']} trials in "
                f"{r['wall_s']:.0f} s = {r['trials_per_hour']:.0f} trials/hour{pick}"
            )
        print(f"{name:<16} auto's pick {'was' if result['auto_fastest'] else 'was NOT'} the faster (within 5 %)")


if __name__ == "__main__":
    main()
