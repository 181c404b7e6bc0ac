"""Groups, side by side in one run: K trials of one shape fused into one step against the same K trained one
by one, for K = 1, 2, 4, 8.

For each case (model, width, batch size) and K, on the same device, data and members (seeds 0..K-1, an lr
grid: 1e-4 * (seed + 1)):
- ``one by one``: each member's own ``Trainer`` step in turn, as one worker trains trials one after another
  (or K processes time-slice one device);
- ``fused``: one ``gansweep.group.Group`` step for all K.
It prints images/s of all K members together each way and their ratio, and the operators each way
dispatches per trial-step, counted by ``torch.profiler`` (top-level ``aten::`` ops: those called by Python
or the autograd engine, not those nested inside another op), with the fused step's count over one solo
step's. On a GPU each op is at least one kernel launch; a fused step launches one member's kernels for all K.
The load average is printed before and after: the machine may be shared.

    .venv/bin/python benchmarks/bench_groups.py                       # every case
    .venv/bin/python benchmarks/bench_groups.py --cases cs231n-mlp --sizes 1 2 --json
    .venv/bin/python benchmarks/bench_groups.py --quick              # 1 step a case: that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gansweep.data import Digits, load_dataset  # noqa: E402
from gansweep.group import Group  # noqa: E402
from gansweep.hparams import resolve_hyperparameters  # noqa: E402
from gansweep.trainer import Trainer, images_per_second, resolve_device, train_step  # noqa: E402

CASES = {
    # name: (model, extra hyperparameters, batch sizes)
    "cs231n-mlp": ("cs231n-mlp", {}, (64, 128, 512)),
    "dcgan28-w32": ("dcgan28", {"width": 32}, (64, 128, 512)),
    "dcgan28-w128": ("dcgan28", {"width": 128}, (64, 512)),
    "dcgan64": ("dcgan64", {"width": 128}, (64,)),
}
"""The grids' batch sizes (64, 128, 512); the two heaviest shapes at fewer of them on a CPU."""


def dispatched_ops(pair, order: torch.Tensor) -> int:
    """Top-level aten ops of one training step of ``pair`` (after one untimed step)."""
    from torch.profiler import ProfilerActivity, profile

    with pair.drawing():
        train_step(pair, order, 0)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            train_step(pair, order, 1 % pair.steps_per_epoch)
    return sum(
        1
        for event in prof.events()
        if event.name.startswith("aten::")
        and (event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::"))
    )


class OneByOne:
    """K trainers stepping one after another: images/s of all K together."""

    def __init__(self, members: list[Trainer]) -> None:
        self.members = members

    def rate(self, steps: int) -> float:
        started = time.perf_counter()
        for member in self.members:
            with member.drawing():
                images_per_second(member, "fp32", steps)
        return steps * sum(m.images_per_step for m in self.members) / (time.perf_counter() - started)


def run_case(name: str, digits: Digits, device: torch.device, batch: int, sizes: list[int], steps: int) -> list[dict]:
    model, extra, _ = CASES[name]
    n = batch * (steps + 2)
    subset = Digits(
        "bench", digits.train_images[:n], digits.train_labels[:n], digits.heldout_images, digits.heldout_labels
    )

    def member(seed: int) -> Trainer:
        hp = resolve_hyperparameters(model, {**extra, "batch_size": batch, "epochs": 1, "lr": 1e-4 * (seed + 1)})
        return Trainer(model, subset, hp, seed=seed, device=device)

    solo = member(0)
    solo_ops = dispatched_ops(solo, solo.epoch_order())
    rows = []
    for k in sizes:
        separate, group = OneByOne([member(seed) for seed in range(k)]), Group([member(seed) for seed in range(k)])
        fused_ops = dispatched_ops(group, group.epoch_order())
        separate.rate(1)  # untimed: allocations, cuDNN's algorithm search
        with group.drawing():
            images_per_second(group, "fp32", 1)
        rates = {"one_by_one": 0.0, "fused": 0.0}
        for _ in range(2):  # side by side, twice over, the better kept
            rates["one_by_one"] = max(rates["one_by_one"], separate.rate(steps))
            rates["fused"] = max(rates["fused"], images_per_second(group, "fp32", steps))
        rows.append(
            {
                "case": name,
                "batch": batch,
                "members": k,
                "one_by_one_img_s": rates["one_by_one"],
                "fused_img_s": rates["fused"],
                "speedup": rates["fused"] / rates["one_by_one"],
                "solo_ops": solo_ops,
                "fused_ops": fused_ops,
                "ops_ratio": fused_ops / solo_ops,
            }
        )
        del separate, group
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batches", nargs="*", type=int, help="only these batch sizes (default: each case's)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[1, 2, 4, 8], help="members per group")
    parser.add_argument("--steps", type=int, default=3, help="steps timed per measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 step, K = 1 and 2, the smallest batch: that it runs")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.sizes = 1, [1, 2]

    device = resolve_device(args.device)
    digits = load_dataset("mnist-5k")
    load_before = os.getloadavg()
    rows = []
    for name in args.cases:
        batches = [b for b in CASES[name][2] if not args.batches or b in args.batches]
        for batch in batches[:1] if args.quick else batches:
            rows.extend(run_case(name, digits, device, batch, args.sizes, args.steps))
    machine = f"{device.type}" + (
        f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f", {torch.get_num_threads()} threads"
    )
    load = {"before": load_before, "after": os.getloadavg()}
    if args.json:
        print(json.dumps({"device": machine, "torch": torch.__version__, "load": load, "results": rows}))
        return
    print(
        f"device: {machine}; torch {torch.__version__}; load average before {load_before[0]:.1f}, after {load['after'][0]:.1f}"
    )
    print(
        f"{'case':<14}{'batch':>6}{'K':>3}{'one by one':>12}{'fused':>10}{'ratio':>7}{'ops solo':>10}{'fused':>7}{'ratio':>7}"
    )
    for r in rows:
        print(
            f"{r['case']:<14}{r['batch']:>6}{r['members']:>3}{r['one_by_one_img_s']:>10.0f}/s{r['fused_img_s']:>8.0f}/s"
            f"{r['speedup']:>6.2f}x{r['solo_ops']:>10}{r['fused_ops']:>7}{r['ops_ratio']:>6.2f}x"
        )


if __name__ == "__main__":
    main()
