"""How soon a sweep starts training: `gansweep run` of a 4-trial cs231n-mlp grid on full MNIST, from a
fresh store and an empty judge cache, with two CPU workers (``--devices cpu --trials-per-device 2``),
timed from the command's launch to its first trial run (the trial's epoch 1 begins right after) and
to its first logged epoch. Target: the first epoch starts within 20 s on a 2-core machine.

Full MNIST without torchvision's download servers: ``python3 ../shared/tools/mnist_offline.py data``.

    .venv/bin/python benchmarks/bench_startup.py                  # data/MNIST/raw
    .venv/bin/python benchmarks/bench_startup.py --data-dir D --json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._args import Parser, folder, seconds  # noqa: E402

GRID = {
    "name": "startup",
    "dataset": "mnist",
    "epochs": 2,
    "device": "cpu",
    "models": [{"model": "cs231n-mlp", "grid": {"lr": [1.0e-3, 5.0e-3], "batch_size": [64, 128]}}],
}
POLL = 0.05


def _first(database: Path, query: str) -> float | None:
    """The smallest millisecond timestamp ``query`` finds, or None (no database, or nothing yet)."""
    if not database.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            (found,) = db.execute(query).fetchone()
    except sqlite3.Error:  # tables not created yet, or a write holds the lock: look again
        return None
    return None if found is None else found / 1000


def measure(data_dir: Path, timeout: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "grid.yaml").write_text(json.dumps(GRID | {"data_dir": str(data_dir.resolve())}))
        env = os.environ | {"GANSWEEP_CACHE": str(folder / "cache"), "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "gansweep.cli", "run", "grid.yaml", "--devices", "cpu"]
        command += ["--trials-per-device", "2", "--store", "mlruns"]
        launched = time.time()
        proc = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        database = folder / "mlruns" / "mlflow.db"
        trial_run = "SELECT min(r.start_time) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid"
        trial_run += " WHERE t.key = 'gansweep.role' AND t.value = 'trial'"
        epoch = "SELECT min(timestamp) FROM metrics WHERE key = 'd_loss' AND step = 1"
        started = logged = None
        while logged is None and proc.poll() is None and time.time() - launched < timeout:
            started = started or _first(database, trial_run)
            logged = _first(database, epoch)
            time.sleep(POLL)
        os.killpg(proc.pid, signal.SIGINT)  # measured: the rest of the sweep is not
        _, stderr = proc.communicate(timeout=120)
    notes = [line for line in stderr.splitlines() if "set up in" in line or "judge" in line]
    return {
        "first_trial_run_s": None if started is None else round(started - launched, 1),
        "first_epoch_logged_s": None if logged is None else round(logged - launched, 1),
        "notes": notes,
    }


def main() -> int:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=folder, default=ROOT / "data", help="holds MNIST/raw/ (default: data)")
    parser.add_argument("--timeout", type=seconds, default=300, help="seconds the sweep may take (default 300)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        parser.error(
            f"argument --data-dir: no MNIST in {args.data_dir}/MNIST/raw: "
            f"python3 ../shared/tools/mnist_offline.py {args.data_dir}"
        )
    result = measure(args.data_dir, args.timeout)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"first trial run {result['first_trial_run_s']} s after the command (target <= 20 s); "
            f"first epoch logged {result['first_epoch_logged_s']} s after"
        )
        for note in result["notes"]:
            print(f"  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
