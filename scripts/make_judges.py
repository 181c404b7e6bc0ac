#!/usr/bin/env python3
"""Makes the judges that ship inside the package: gansweep/diagnostics/judges/<data set>.pt.

Each is ``train_judge`` with seed 0 on the data set's training split, scored on its held-out split,
saved with that accuracy, the judge version, the sha256 of its weights and how it was made. The same
script and seed give the same held-out accuracy within ``TOLERANCE`` on any CPU, not the same weights: other
kernels sum in another order (``--check`` retrains and compares without writing;
tests/diagnostics_tests/test_judge_and_metrics.py runs it for mnist-5k). The shipped file itself is held to
its fingerprint (sha256 of its weights), never retrained in place.

    python scripts/make_judges.py --data-dir data                 # both (mnist: its IDX files in data/MNIST/raw/)
    python scripts/make_judges.py mnist-5k --check                # retrain, compare with the shipped one
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not

from gansweep.data import load_dataset  # noqa: E402
from gansweep.diagnostics.judge import JUDGE_VERSION, SHIPPED, read_judge, save_judge, train_judge  # noqa: E402
from gansweep.diagnostics.metrics import Reference  # noqa: E402

DATASETS = ("mnist-5k", "mnist")
THREADS = 1
"""One thread: with two, torch's worker threads spin-wait for each other, and on a busy 2-core machine the
mnist-5k judge took 480 s instead of 51 s (AMD EPYC, measured back to back). The count changes the float
results too (seed 0: 97.4 % with one thread, 97.2 % with two), which ``TOLERANCE`` allows for."""
SEED = 0
TOLERANCE = 0.006
"""0.6 point of held-out accuracy (3 of mnist-5k's 500 held-out digits): what a retrain may differ by. A
retrain on other kernels follows another float trajectory, as another seed does, so it was measured across
seeds: seeds 0-9 on one AMD EPYC gave 97.2-97.6 % (mean 97.44, sd 0.16); the shipped file (seed 0, made on
another CPU) has 97.6 %, and the issue's AMD retrain 97.2 %. The seeds' range is 2 digits; 3 digits is
about 3 sd, so a retrain fails this only when the training itself changed."""


def make(name: str, data_dir: str, check: bool) -> bool:
    digits = load_dataset(name, data_dir)
    started = time.perf_counter()
    judge = train_judge(digits, seed=SEED, say=lambda line: print(f"  {line}", flush=True))
    took = time.perf_counter() - started
    print(f"{name}: held-out accuracy {judge.accuracy:.4f} on {len(digits.heldout_images):,} digits, {took:.0f} s")
    print(f"  sha256 {judge.sha256} (version {JUDGE_VERSION})")
    path = SHIPPED / f"{name}.pt"
    if check:
        ship = read_judge(path, "shipped")
        same = abs(judge.accuracy - ship.accuracy) <= TOLERANCE
        print(
            f"  shipped: {ship.accuracy:.4f}, sha256 {ship.sha256}: accuracy {'within' if same else 'NOT within'} {TOLERANCE * 100:.1f} point"
        )
        return same
    Reference.of(judge, digits.heldout_images)  # kept in judge.references, and saved with it
    made = {"script": "scripts/make_judges.py", "seed": SEED, "threads": THREADS, "torch": str(torch.__version__)}
    save_judge(judge, path, made | {"machine": platform.machine(), "seconds": round(took)})
    print(f"  wrote {path} ({path.stat().st_size:,} bytes)")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=list(DATASETS), choices=DATASETS, metavar="DATASET")
    parser.add_argument("--data-dir", default="data", help="where mnist's IDX files are (MNIST/raw/)")
    parser.add_argument("--check", action="store_true", help="retrain and compare with the shipped judge")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    results = [make(name, args.data_dir, args.check) for name in args.datasets]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
