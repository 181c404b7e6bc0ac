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

And ``--sweep``: a whole ``gansweep run`` of an lr grid (4 cs231n-mlp trials, batch 128, mnist-5k,
``early_stop: []``), from an empty store once per ``--group-size`` (1, auto, 4), side by side: wall time,
and what auto chose.

    .venv/bin/python benchmarks/bench_groups.py                       # every case
    .venv/bin/python benchmarks/bench_groups.py --cases cs231n-mlp --sizes 1 2 --json
    .venv/bin/python benchmarks/bench_groups.py --sweep --epochs 5   # the whole run, three ways
    .venv/bin/python benchmarks/bench_groups.py --quick              # 1 step a case: that it runs
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._args import EPOCHS, MOST_REPEATS, Parser, whole  # noqa: E402
from gansweep.config import load_config, plan_trials  # noqa: E402
from gansweep.data import TRAIN_SIZES, Digits, load_dataset  # noqa: E402
from gansweep.group import Group, shape  # noqa: E402
from gansweep.hparams import resolve_hyperparameters  # noqa: E402
from gansweep.models import MODELS  # noqa: E402
from gansweep.options import MAX_GROUP  # noqa: E402
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


def run_case(
    model: str, extra: dict, digits: Digits, device: torch.device, batch: int, sizes: list[int], steps: int
) -> list[dict]:
    """One row per group size: images/s one by one and fused, and dispatched ops per trial-step."""
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
                "case": f"{model}-w{extra['width']}" if "width" in extra else model,
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


GPU_CASES = (("dcgan28", 64), ("dcgan28", 512), ("dcgan64", 64), ("dcgan64", 512))
"""``gpu_check.py``'s groups step (issue 33): dcgan28 and dcgan64 at batch 64 and 512."""


def case_rows(
    cases, extra: dict, device: torch.device, sizes: list[int], steps: int, deadline: float
) -> tuple[list[dict], list[str]]:
    """``run_case`` for each (model, batch) of ``cases`` until ``deadline`` (``time.monotonic``); the cases
    left out for want of time."""
    digits, rows, skipped = load_dataset("mnist-5k"), [], []
    for model, batch in cases:
        if time.monotonic() > deadline:
            skipped.append(f"{model} batch {batch}")
            continue
        width = {k: v for k, v in extra.items() if k in MODELS[model].extra_hyperparameters}
        rows.extend(run_case(model, width, digits, device, batch, sizes, steps))
    return rows, skipped


def plan_table(
    table: Path, dataset: str, device: torch.device, steps: int, extra: dict, deadline: float, most: int | None = None
) -> dict:
    """A sweep file's points planned as groups (``group.shape``, up to ``MAX_GROUP`` a group) and the time
    each plan predicts, one group after another on ``device``: each group's fused images/s and its
    members' one by one, measured here at its own shape (``steps`` steps after an untimed one), times the
    file's epochs on ``dataset``. Groups past ``deadline`` or the first ``most`` are listed without a time."""
    config = load_config(table)
    plans = plan_trials(config, TRAIN_SIZES[dataset])
    shapes: dict[tuple, list] = {}
    for plan in plans:
        shapes.setdefault(shape(plan.model, plan.hp), []).append(plan)
    groups = [members[i : i + MAX_GROUP] for members in shapes.values() for i in range(0, len(members), MAX_GROUP)]
    digits, planned = load_dataset("mnist-5k"), []
    for members in groups:
        first = members[0]
        row = {"members": len(members), "batch_size": first.hp.batch_size, "latent_dim": first.hp.latent_dim}
        if time.monotonic() > deadline or (most is not None and len(planned) >= most):
            planned.append(row | {"skipped": "not measured (time)"})
            continue
        images = config.epochs * (TRAIN_SIZES[dataset] // first.hp.batch_size) * first.hp.batch_size
        hp = replace(first.hp, **{k: v for k, v in extra.items() if hasattr(first.hp, k)})
        n = hp.batch_size * (steps + 2)
        subset = Digits(
            "plan", digits.train_images[:n], digits.train_labels[:n], digits.heldout_images, digits.heldout_labels
        )
        rates = {}
        for k in sorted({1, len(members)}):
            made = [Trainer(first.model, subset, hp, seed=seed, device=device) for seed in range(k)]
            pair = made[0] if k == 1 else Group(made)
            with pair.drawing():
                images_per_second(pair, "fp32", 1)
                rates[k] = max(images_per_second(pair, "fp32", steps) for _ in range(2))
        one_by_one = len(members) * images / rates[1]
        row |= {"img_s_alone": round(rates[1]), "img_s_grouped": round(rates[len(members)])}
        row |= {"one_by_one_s": round(one_by_one), "grouped_s": round(len(members) * images / rates[len(members)])}
        planned.append(row)
    timed = [row for row in planned if "grouped_s" in row]
    totals = {key: sum(row[key] for row in timed) for key in ("one_by_one_s", "grouped_s")}
    return {
        "trials": len(plans),
        "groups": len(groups),
        "epochs": config.epochs,
        "dataset": dataset,
        "plan": planned,
    } | totals


LR_GRID = {
    "name": "groups-bench",
    "device": "cpu",
    "early_stop": [],
    "models": [{"model": "cs231n-mlp", "batch_size": 128, "grid": {"lr": [1.0e-3, 5.0e-4, 2.0e-4, 1.0e-4]}}],
}
"""Every epoch trained each way (early stopping would stop at epochs that depend on the float32 drift)."""


def sweep_case(epochs: int, device: str) -> dict[str, dict]:
    """The lr grid as a whole sweep from an empty store, once per group size: wall time, and the groups its
    runs were tagged with."""
    from mlflow import MlflowClient

    import gansweep

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (1, "auto", 4):
            store = Path(tmp) / str(size)
            started = time.perf_counter()
            grid = {**LR_GRID, "epochs": epochs, "device": device}
            gansweep.run(grid, progress=False, store=store, workers=1, group_size=size)
            seconds = time.perf_counter() - started
            client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
            runs = client.search_runs([client.get_experiment_by_name("groups-bench").experiment_id])
            groups = sorted({r.data.tags.get("gansweep.group", "") for r in runs if "gansweep.key" in r.data.tags})
            results[str(size)] = {"wall_s": round(seconds, 1), "groups": [g for g in groups if g]}
    return results


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument(
        "--batches", nargs="+", type=whole(1, 4500), help="only these batch sizes (default: each case's)"
    )
    parser.add_argument("--sizes", nargs="+", type=whole(1, MAX_GROUP), default=[1, 2, 4, 8], help="members per group")
    parser.add_argument("--steps", type=whole(1, MOST_REPEATS), default=3, help="steps timed per measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sweep", action="store_true", help="a whole gansweep run of an lr grid, three ways")
    parser.add_argument("--epochs", type=whole(1, EPOCHS), default=3, help="with --sweep: epochs a trial")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 step, K = 1 and 2, the smallest batch: that it runs")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.sizes = 1, [1, 2]

    device = resolve_device(args.device)
    load_before = os.getloadavg()
    machine = f"{device.type}" + (
        f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f", {torch.get_num_threads()} threads"
    )
    if args.sweep:
        results = sweep_case(1 if args.quick else args.epochs, device.type)
        load = {"before": load_before, "after": os.getloadavg()}
        if args.json:
            print(json.dumps({"device": machine, "load": load, "sweep": results}))
            return
        print(f"device: {machine}; load average before {load_before[0]:.1f}, after {load['after'][0]:.1f}")
        for size, r in results.items():
            print(f"--group-size {size:<5} {r['wall_s']:>7.1f} s  groups: {', '.join(r['groups']) or 'none'}")
        return
    digits = load_dataset("mnist-5k")
    rows = []
    for name in args.cases:
        model, extra, batches = CASES[name]
        batches = tuple(b for b in batches if not args.batches or b in args.batches)
        for batch in batches[:1] if args.quick else batches:
            rows.extend(run_case(model, extra, digits, device, batch, args.sizes, args.steps))
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
