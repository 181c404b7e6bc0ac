"""What ``early_stop: auto`` saves, and that it changes no outcome: one sweep of eight settings on
mnist-5k (the small models, on the CPU), trained twice side by side in one run, with ``early_stop: auto``
(the default) and with ``early_stop: []`` (every trial trains all its epochs).

The settings are report 000's kind of MLP grid, chosen to hold both kinds of trial: learning rates and
batch sizes at which mnist-5k runs collapse (the real-run regression set's mlp lr 2e-3, cs231n-mlp
lr 5e-3 at batch 64) and ones at which they learn. Per setting it prints the outcome both ways (good,
bad or unclear), the epoch early stopping ended the trial at, and the totals: trial-epochs saved and
wall time both ways.

    .venv/bin/python benchmarks/bench_early_stop.py             # 8 settings x 30 epochs, both ways
    .venv/bin/python benchmarks/bench_early_stop.py --quick --json   # 2 settings x 2 epochs: that it runs
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
from gansweep.sweep import open_study  # noqa: E402
from gansweep.sweep._layout import cores  # noqa: E402
from gansweep.tables import ReportRow, collect_rows, saved_epochs  # noqa: E402

MODELS = [
    {"model": "mlp", "grid": {"lr": [2.0e-3, 5.0e-3], "batch_size": [64, 128]}},
    {"model": "cs231n-mlp", "grid": {"lr": [1.0e-3, 5.0e-3], "batch_size": [64, 128]}},
]
QUICK = [{"model": "cs231n-mlp", "grid": {"lr": [1.0e-3, 5.0e-3], "batch_size": [500]}}]
EPOCHS_DEFAULT = 30


def _sweep(
    models: list[dict], epochs: int, early_stop: str | list, store: Path, workers: int
) -> tuple[list[ReportRow], float]:
    grid = {"name": "early-stop", "epochs": epochs, "device": "cpu", "early_stop": early_stop, "models": models}
    start = time.perf_counter()
    sweep = gansweep.run(grid, progress=False, store=store, workers=workers)
    seconds = time.perf_counter() - start
    return collect_rows(open_study(sweep.settings, create=False).get_trials(deepcopy=False), sweep.plans), seconds


def main() -> None:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=whole(1, EPOCHS), help=f"epochs a trial (default {EPOCHS_DEFAULT})")
    parser.add_argument("--workers", type=whole(1, cores(), " (the CPU cores)"), default=1)
    parser.add_argument("--quick", action="store_true", help="2 settings x 2 epochs: that it runs, not a measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick and args.epochs is not None:
        parser.error("--epochs and --quick: give one (--quick trains 2 epochs)")
    models, epochs = (QUICK, 2) if args.quick else (MODELS, args.epochs or EPOCHS_DEFAULT)
    with tempfile.TemporaryDirectory() as tmp:
        auto, auto_s = _sweep(models, epochs, "auto", Path(tmp) / "auto", args.workers)
        full, full_s = _sweep(models, epochs, [], Path(tmp) / "full", args.workers)
    by_key = {r.key: r for r in full}
    rows = [
        {
            "setting": f"{r.model} lr={r.lr_g:g} batch={r.batch_size}",
            "auto": r.judged,
            "full": by_key[r.key].judged,
            "epochs_auto": r.epochs_trained,
            "verdict_auto": r.verdict,
            "verdict_full": by_key[r.key].verdict,
        }
        for r in auto
    ]
    stopped, saved, planned = saved_epochs(auto)
    result = {
        "settings": len(rows),
        "epochs": epochs,
        "stopped": stopped,
        "epochs_saved": saved,
        "epochs_planned": planned,
        "same_outcomes": all(r["auto"] == r["full"] for r in rows),
        "wall_s_auto": round(auto_s, 1),
        "wall_s_full": round(full_s, 1),
        "rows": rows,
    }
    if args.json:
        print(json.dumps(result))
        return
    for r in rows:
        print(f"{r['setting']:<32} auto {r['auto']:<8} ({r['epochs_auto']} epochs)  full {r['full']}")
        print(f"    auto: {r['verdict_auto']}\n    full: {r['verdict_full']}")
    print(
        f"early_stop: auto stopped {stopped} of {len(rows)} trials, saving {saved} of {planned} trial-epochs "
        f"({saved / planned:.0%}); outcomes {'identical' if result['same_outcomes'] else 'DIFFERENT'}; "
        f"wall {auto_s:.0f} s vs {full_s:.0f} s"
    )


if __name__ == "__main__":
    main()
