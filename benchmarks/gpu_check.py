"""Every measurement issue 25 asks of a GPU, in one prepared run of at most nine minutes, written to one
results file, so that a GPU session only has to run it and read what it wrote.

On a fresh GPU machine, prepared by ../shared/gpu/prepare.sh (it has no network):

    source .gpu/env.sh && python3 benchmarks/gpu_check.py --out gpu_check.md

Steps, in this order, each under its share of ``--budget`` (``SHARES``); one that fails or runs out of time
is recorded as such and the others go on, and the file is rewritten after every step, so a run cut short
keeps what it measured:

- ``judge``: the judges of the table's data set and of mnist-5k (the benchmark's): both ship with the
  package, so this only checks that they load, and names them (a sweep's judge must be the shipped one).
- ``table``: report 000's DCGAN64 table (``sweeps/report-dcgan64.yaml``, 11 rows, full MNIST,
  ``early_stop: auto`` as it ships, ``amp: true``) as a sweep with ``--trials-per-device`` 1, 2 and 4, each
  from an empty store, at one epoch a trial (40 do not fit three times in the budget): wall time, trials and
  trial-epochs done, the precision each trial chose, and the wall time extrapolated to 40 epochs two ways;
  the report of the first.
- ``groups``: trials fused into one group against the same trials one by one (``bench_groups.py``): images/s
  and dispatched ops per trial-step for K = 1, 2, 4, 8 of dcgan28 and dcgan64 at batch 64 and 512; and the
  DCGAN64 table planned as groups: how many, and the time each plan predicts for 40 epochs.
- ``throughput``: each seed model at its report batch on the table's data set: images/s in fp32 and bf16,
  and for the convolutional ones in channels_last too, and what ``amp``'s own measurement picks.
- ``profile``: ``torch.profiler`` over training steps of dcgan64 and cs231n-mlp: the top kernels, device
  and host busy time against the wall, host syncs and kernel launches a step (is a step launch-bound?).
- ``bench``: ``benchmarks/bench_trainer.py --device cuda`` (one repeat).
- ``suite``: the CUDA tests of ``tests/test_trainer.py``, with ``tests/test_models.py`` and
  ``tests/test_losses.py``, with CUDA visible.

``--toy`` runs the same steps on the CPU at toy size (mnist-5k, width-4 DCGANs, batch 64, one step a case, the
throughput of the two profiled models, one table row of one epoch, one trial per device): ``tests/test_benchmarks.py``
runs it. ``--out`` ending in ``.json`` writes
JSON, else markdown.

    python3 benchmarks/gpu_check.py --toy --out /tmp/gpu_check.md     # the same steps on the CPU, ~1 minute
    python3 benchmarks/gpu_check.py --steps judge table --table-epochs 40 --trials-per-device 4   # the table itself
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._args import EPOCHS, MOST_SECONDS, Parser, results_file, seconds, whole  # noqa: E402
from gansweep.config import load_config  # noqa: E402
from gansweep.data import TRAIN_SIZES, load_dataset  # noqa: E402
from gansweep.diagnostics import load_judge  # noqa: E402
from gansweep.hparams import resolve_hyperparameters  # noqa: E402
from gansweep.models import MODELS  # noqa: E402
from gansweep.options import MAX_WORKERS  # noqa: E402
from gansweep.sweep import SweepSettings, TrialRecord, cores, open_study  # noqa: E402
from gansweep.trainer import Trainer, choose_precision, device_problem, images_per_second, train_step  # noqa: E402

SHARES = {
    "judge": 0.02,
    "table": 0.45,
    "groups": 0.12,
    "throughput": 0.12,
    "profile": 0.08,
    "bench": 0.08,
    "suite": 0.10,
}
"""Each step's share of ``--budget``; the 3 % left over is for starting this script and writing the file.
The table gets the most: its wall time is what issue 25 is judged by."""
BUDGET = 540
"""Seconds for the whole check: nine minutes, so that set-up and this fit one ten-minute device call."""
TABLE = ROOT / "sweeps" / "report-dcgan64.yaml"
TABLE_EPOCHS = 40
"""The report's epochs, which the extrapolations aim at."""
PROFILED = ("dcgan64", "cs231n-mlp")
SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "aten::_local_scalar_dense")
"""Profiler events where the host waits for the device (``_local_scalar_dense`` is ``.item()``)."""
LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")


@dataclass(frozen=True)
class Size:
    """How big each step's work is: the GPU run's, or the toy run's on the CPU."""

    device: str
    dataset: str
    table_rows: int | None
    """The table's first rows that are trained; None: all 11."""
    table_epochs: int
    trials_per_device: tuple[int, ...]
    steps: int
    """Training steps timed (or profiled) per case, after ``WARMUP`` untimed ones."""
    models: tuple[str, ...] | None = None
    """The seed models whose throughput is measured; None: every one."""
    toy: bool = False
    """The benchmark runs ``--quick`` (two steps, cs231n-mlp)."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """Set over each model's report defaults (``width`` only where the model has one)."""


GPU = Size("cuda", "mnist", None, 1, (1, 2, 4), 20)
TOY = Size("cpu", "mnist-5k", 1, 1, (1,), 1, PROFILED, True, {"batch_size": 64, "width": 4})
WARMUP = 2
"""Untimed steps first: cuDNN's algorithm search (``cudnn.benchmark``), autocast's first casts."""


class StepFailed(Exception):
    """A step that did not finish: its error, or the time it ran out of."""


# ---- the parent: steps under budgets, the results file ------------------------------------------------


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=results_file, default=Path("gpu_check.md"), help="results file (.json: JSON)")
    parser.add_argument("--toy", action="store_true", help="the same steps at toy size on the CPU")
    parser.add_argument(
        "--budget", type=seconds, default=BUDGET, help=f"seconds for the whole check, at most {MOST_SECONDS:,}"
    )
    parser.add_argument("--device", help="default: cuda, or cpu with --toy")
    parser.add_argument("--steps", nargs="+", choices=list(SHARES), default=list(SHARES), help="run only these")
    parser.add_argument(
        "--table-epochs", type=whole(1, EPOCHS), help="epochs a table trial (default 1; 40: the table itself)"
    )
    parser.add_argument(
        "--trials-per-device",
        type=whole(1, MAX_WORKERS, " (workers on one machine)"),
        nargs="+",
        help="the table's layouts (default 1 2 4)",
    )
    parser.add_argument("--step", choices=list(CHILD_STEPS), help=argparse.SUPPRESS)  # a child's: one step,
    parser.add_argument("--size", type=json.loads, help=argparse.SUPPRESS)  # at this size,
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)  # its result as JSON into this file
    args = parser.parse_args()
    if args.step:
        size = Size(**args.size | {k: tuple(args.size[k] or ()) or None for k in ("trials_per_device", "models")})
        args.result.write_text(json.dumps(CHILD_STEPS[args.step](size, args.budget)))
        return
    given = {"device": args.device, "table_epochs": args.table_epochs, "trials_per_device": args.trials_per_device}
    size = replace(TOY if args.toy else GPU, **{k: v for k, v in given.items() if v is not None})
    size = replace(size, trials_per_device=tuple(size.trials_per_device))
    _check_size(parser, size, args.steps)
    started = time.monotonic()
    results: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    results |= {"mode": "toy" if args.toy else "gpu", "budget_s": args.budget, "size": asdict(size)}
    results |= {"machine": _machine(), "steps": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        chosen = sum(SHARES[name] for name in args.steps) / sum(SHARES.values())
        for name in args.steps:
            budget = args.budget * SHARES[name] / chosen  # the steps left out leave their shares to the others
            step_started = time.monotonic()
            try:
                outcome = {"status": "ok", **STEPS[name](size, budget, Path(tmp))}
            except StepFailed as failure:
                outcome = {"status": "failed", "error": str(failure)}
            except Exception as error:  # recorded, not fatal: the other steps still measure
                outcome = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
            results["steps"][name] = {"seconds": round(time.monotonic() - step_started, 1), "budget_s": budget}
            results["steps"][name] |= outcome
            results["wall_s"] = round(time.monotonic() - started, 1)
            _write(results, args.out)
    failed = [name for name, step in results["steps"].items() if step["status"] != "ok"]
    print(f"wrote {args.out} ({results['wall_s']:.0f} s)" + (f"; failed: {', '.join(failed)}" if failed else ""))
    if failed:  # a check with failed steps is no pass: it exited 0 and read as one
        sys.exit(1)


def _check_size(parser: Parser, size: Size, steps: list[str]) -> None:
    """What the steps would fail on, refused before any of them runs."""
    if problem := device_problem(size.device):
        fix = "; --toy runs the same steps on the CPU" if not (size.toy or torch.cuda.is_available()) else ""
        parser.error(f"argument --device: {problem}{fix}")
    if len(set(steps)) < len(steps):
        parser.error(f"argument --steps: {', '.join(steps)} names a step twice; name each once")
    if len(set(size.trials_per_device)) < len(size.trials_per_device):
        parser.error("argument --trials-per-device: a layout given twice; give each once")
    if size.device == "cpu" and max(size.trials_per_device) > cores():
        parser.error(
            f"argument --trials-per-device: {max(size.trials_per_device)} CPU workers with {cores()} CPU cores: at most "
            f"{cores()} (gansweep run refuses more)"
        )


def _machine() -> dict[str, Any]:
    """Without a CUDA context in this process: one would hold GPU memory while the steps' processes train."""
    try:
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
        gpu = subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip() or None
    except OSError:  # no NVIDIA driver here
        gpu = None
    return {"torch": torch.__version__, "gpu": gpu, "cpu_cores": os.cpu_count(), "python": sys.version.split()[0]}


def _write(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) if out.suffix == ".json" else to_markdown(results))


def _run(command: list[str], budget: float, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``command`` in a process group of its own, killed whole when ``budget`` runs out (StepFailed)."""
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=max(budget, 1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise StepFailed(f"ran out of its {budget:.0f} s; last output: {_tail(err or out)}") from None
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _tail(text: str, lines: int = 4) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _child(step: str, size: Size, budget: float, tmp: Path) -> dict[str, Any]:
    """A step that needs torch in a process of its own (its own CUDA context, killed whole if it hangs)."""
    result = tmp / f"{step}.json"
    command = [sys.executable, __file__, "--step", step, "--size", json.dumps(asdict(size)), "--result", str(result)]
    done = _run(command + ["--budget", str(budget * 0.9)], budget)  # the child leaves out what would not fit
    if done.returncode != 0:
        raise StepFailed(f"exit code {done.returncode}: {_tail(done.stderr)}")
    return json.loads(result.read_text())


def _gansweep() -> list[str]:
    """How a sweep is started: the prepared launcher on the GPU machine (its console script is not
    installed there), else the package's module."""
    launcher = ROOT / ".gpu" / "gs"
    return [sys.executable, str(launcher)] if launcher.is_file() else [sys.executable, "-m", "gansweep.cli"]


# ---- steps run from the parent -----------------------------------------------------------------------


def step_judge(size: Size, budget: float, tmp: Path) -> dict[str, Any]:
    return _child("judge", size, budget, tmp)


def step_table(size: Size, budget: float, tmp: Path) -> dict[str, Any]:
    grid, rows = _table_grid(size, tmp)
    runs: dict[str, Any] = {}
    deadline = time.monotonic() + budget
    for i, per_device in enumerate(size.trials_per_device):
        left = deadline - time.monotonic()
        share = left / (len(size.trials_per_device) - i)  # an unused share passes to the next
        store = tmp / f"table-{per_device}"
        command = [*_gansweep(), "run", str(grid), "--store", str(store), "--devices", size.device]
        command += ["--trials-per-device", str(per_device)]
        started = time.monotonic()
        try:
            done = _run(command, share)
            run = {"exit": done.returncode, "report": _report_of(done.stdout) if i == 0 else None}
            if done.returncode != 0:
                run["error"] = _tail(done.stderr)
        except StepFailed as failure:
            run = {"exit": None, "error": str(failure)}
        run["wall_s"] = round(time.monotonic() - started, 1)
        try:
            run |= _trained(grid, store, run["wall_s"], rows, size.table_epochs, per_device)
        except Exception as error:  # a sweep killed mid-write may leave a study that does not read
            run["study_error"] = f"{type(error).__name__}: {error}"[:300]
        runs[str(per_device)] = run
    return {"rows": rows, "epochs": size.table_epochs, "dataset": size.dataset, "runs": runs}


def _table_grid(size: Size, tmp: Path) -> tuple[Path, int]:
    """The report's grid on the check's data set and epochs (and, at toy size, its first rows, narrow)."""
    grid = yaml.safe_load(TABLE.read_text())
    points = grid["models"][0]["points"][: size.table_rows]
    grid["models"][0]["points"] = points
    grid |= {"name": "gpu-check-table", "dataset": size.dataset, "epochs": size.table_epochs, "device": size.device}
    grid["amp"] = True  # each trial measures fp32 against bf16 and trains in the faster: the table's fastest way
    grid |= {"width": size.hyperparameters["width"]} if "width" in size.hyperparameters else {}
    path = tmp / "table.yaml"
    path.write_text(json.dumps(grid))  # JSON is YAML
    return path, len(points)


def _report_of(stdout: str) -> str:
    """The sweep's report: what `gansweep run` prints before its closing line."""
    return stdout.strip().rsplit("\n", 1)[0]


def _trained(grid: Path, store: Path, wall: float, rows: int, epochs: int, per_device: int) -> dict[str, Any]:
    """What the sweep trained, from its study, and its wall time extrapolated to ``TABLE_EPOCHS``: scaled
    whole (start-up and each trial's overhead too: an upper bound), and modelled as each trial's measured
    overhead plus 40 of its epochs, ``per_device`` trials at a time (the epoch times measured with the
    others training beside them)."""
    study = open_study(SweepSettings(load_config(grid), "", "gpu-check-table", store), create=False)
    records = [TrialRecord.of(t) for t in study.get_trials(deepcopy=False)] if study else []
    done = [r for r in records if r.state.value == "complete"]
    trained = sum(int(r.final.get("epoch", 0)) for r in done)
    seconds = [r.final["seconds"] for r in done if "seconds" in r.final]  # the last epoch's training time
    summary: dict[str, Any] = {"trials_complete": len(done), "trial_epochs": trained}
    summary["precision"] = sorted({r.precision for r in done if r.precision})
    summary["verdicts"] = [r.verdict for r in done]
    if not done or not seconds:
        return summary
    epoch_s = statistics.mean(seconds)
    overhead = max(0.0, wall * per_device / len(done) - trained / len(done) * epoch_s)
    summary |= {"epoch_s_mean": round(epoch_s, 2), "overhead_per_trial_s": round(overhead, 2)}
    summary["extrapolated_40_scaled_s"] = round(wall * rows * TABLE_EPOCHS / trained, 0)
    summary["extrapolated_40_modelled_s"] = round(rows * (overhead + TABLE_EPOCHS * epoch_s) / per_device, 0)
    return summary


def step_groups(size: Size, budget: float, tmp: Path) -> dict[str, Any]:
    return _child("groups", size, budget, tmp)


def step_throughput(size: Size, budget: float, tmp: Path) -> dict[str, Any]:
    return _child("throughput", size, budget, tmp)


def step_profile(size: Size, budget: float, tmp: Path) -> dict[str, Any]:
    return _child("profile", size, budget, tmp)


def step_bench(size: Size, budget: float, tmp: Path) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_trainer.py"), "--device", size.device, "--json"]
    command += ["--repeats", "1"] + (["--quick", "--models", "cs231n-mlp"] if size.toy else [])
    done = _run(command, budget)
    if done.returncode != 0:
        raise StepFailed(f"exit code {done.returncode}: {_tail(done.stderr)}")
    return json.loads(done.stdout)


def step_suite(size: Size, budget: float, tmp: Path) -> dict[str, Any]:
    tests = ["tests/test_trainer.py", "tests/test_models.py", "tests/test_losses.py"]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    command += ["-k", "cuda or test_models or test_losses"]  # test_trainer's CUDA tests; the others are quick
    done = _run(command, budget)
    lines = done.stdout.strip().splitlines()
    return {"exit": done.returncode, "summary": lines[-1] if lines else "", "failures": _failures(done.stdout)}


def _failures(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]


STEPS = {
    "judge": step_judge,
    "table": step_table,
    "groups": step_groups,
    "throughput": step_throughput,
    "profile": step_profile,
    "bench": step_bench,
    "suite": step_suite,
}


# ---- steps run in a child process --------------------------------------------------------------------


def child_judge(size: Size, budget: float) -> dict[str, Any]:
    seconds, names = {}, {}
    for name in dict.fromkeys((size.dataset, "mnist-5k")):
        started = time.perf_counter()
        judge = load_judge(load_dataset(name))
        seconds[name] = round(time.perf_counter() - started, 1)
        names[name] = f"{judge.name} ({judge.source})"
    return {"seconds_by_dataset": seconds, "judges": names}


def _trainer(model: str, size: Size, amp: bool = False):
    extra = MODELS[model].extra_hyperparameters
    given = {k: v for k, v in size.hyperparameters.items() if k != "width" or k in extra}
    hp = resolve_hyperparameters(model, {**given, "epochs": 1}, n_train=TRAIN_SIZES[size.dataset])
    return Trainer(model, load_dataset(size.dataset), hp, seed=0, device=size.device, amp=amp)


def child_throughput(size: Size, budget: float) -> dict[str, Any]:
    """Images/s of each seed model in fp32 and bf16, NCHW and (convolutional models) channels_last, timed
    by the trainer's own ``_rate`` (the steps amp's measurement times), and amp's own pick."""

    deadline, results = time.monotonic() + budget, {}
    for model in size.models or MODELS:
        if time.monotonic() > deadline:
            results[model] = {"skipped": "the step's budget ran out"}
            continue
        try:
            results[model] = _rates(model, size)
        except Exception as error:  # recorded: the other models still measure
            results[model] = {"skipped": f"{type(error).__name__}: {error}"[:300]}
    return {"steps": size.steps, "dataset": size.dataset, "models": results}


def _rates(model: str, size: Size) -> dict[str, Any]:
    trainer = _trainer(model, size, amp=True)
    trainer.precision, _ = choose_precision(trainer)
    rates: dict[str, Any] = {"batch_size": trainer.hp.batch_size, "amp_picks": trainer.precision}
    rates["amp_measured"] = {k: round(v) for k, v in trainer.precision_rates.items()}
    convolutional = any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in trainer.generator.modules())
    for layout in ("nchw", "channels_last") if convolutional else ("nchw",):
        if layout == "channels_last":
            trainer.generator.to(memory_format=torch.channels_last)
            trainer.discriminator.to(memory_format=torch.channels_last)
        for precision in ("fp32", "bf16"):
            images_per_second(trainer, precision, WARMUP)
            rates[f"{precision}_{layout}_img_s"] = round(images_per_second(trainer, precision, size.steps))
    rates["bf16_vs_fp32"] = round(rates["bf16_nchw_img_s"] / rates["fp32_nchw_img_s"], 2)
    return rates


def child_profile(size: Size, budget: float) -> dict[str, Any]:
    """Where a training step's time goes, for a big model and a small one (fp32)."""
    return {model: _profiled(model, size) for model in PROFILED}


def _profiled(model: str, size: Size) -> dict[str, Any]:
    trainer = _trainer(model, size)
    trainer.precision = "fp32"
    order = torch.randperm(len(trainer.images), device=trainer.device)
    for step in range(WARMUP):
        train_step(trainer, order, step)
    cuda = trainer.device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        for step in range(WARMUP, WARMUP + size.steps):
            train_step(trainer, order, step % trainer.steps_per_epoch)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    events = prof.key_averages()

    def device_us(e) -> float:  # torch renamed self_cuda_time_total to self_device_time_total
        return getattr(e, "self_device_time_total", 0.0) or getattr(e, "self_cuda_time_total", 0.0)

    kernels = [e for e in events if cuda and e.device_type == DeviceType.CUDA]
    ranked = (
        sorted(kernels, key=device_us, reverse=True) if cuda else sorted(events, key=lambda e: -e.self_cpu_time_total)
    )
    busy = sum(map(device_us, kernels)) if cuda else None
    # CPU time in ops on every thread: over 100 % of the wall when autograd's device thread runs backward
    # beside the main thread. The profiler's own cost per op inflates it for the smallest models.
    host = sum(e.self_cpu_time_total for e in events if e.device_type == DeviceType.CPU)
    count = {e.key: e.count for e in events}
    top = [
        {"name": e.key[:90], "calls": e.count, "ms": round((device_us(e) if cuda else e.self_cpu_time_total) / 1e3, 2)}
        for e in ranked[:10]
    ]
    return {
        "batch_size": trainer.hp.batch_size,
        "steps": size.steps,
        "wall_ms_per_step": round(wall / size.steps * 1e3, 2),
        "device_busy_share": None if busy is None else round(busy / 1e6 / wall, 3),
        "host_busy_share": round(host / 1e6 / wall, 3),
        "host_syncs_per_step": round(sum(count.get(name, 0) for name in SYNCS) / size.steps, 2),
        "launches_per_step": round(sum(count.get(name, 0) for name in LAUNCHES) / size.steps, 1),
        "top": top,
    }


def child_groups(size: Size, budget: float) -> dict[str, Any]:
    """Groups against one by one (half the budget), then the table planned as groups (the rest); at toy
    size K = 1 and 2 of both models at batch 64, and the plan at the toy width, its first two groups timed."""
    from benchmarks.bench_groups import GPU_CASES, case_rows, plan_table

    device, started = torch.device(size.device), time.monotonic()
    cases = [(model, 64) for model in ("dcgan28", "dcgan64")] if size.toy else GPU_CASES
    sizes = [1, 2] if size.toy else [1, 2, 4, 8]
    extra = {k: v for k, v in size.hyperparameters.items() if k == "width"}
    rows, skipped = case_rows(cases, extra, device, sizes, size.steps, started + budget / 2)
    plan = plan_table(
        TABLE, size.dataset, device, max(1, size.steps // 4), extra, started + budget, 2 if size.toy else None
    )
    return {"steps": size.steps, "rows": rows, "skipped": skipped, "table": plan}


CHILD_STEPS = {"judge": child_judge, "groups": child_groups, "throughput": child_throughput, "profile": child_profile}


# ---- the results file --------------------------------------------------------------------------------


def to_markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"# gpu_check ({results['mode']}) {results['started']}",
        "",
        f"{machine['gpu'] or 'no GPU'}; torch {machine['torch']}; {machine['cpu_cores']} CPU cores; "
        f"{results.get('wall_s', 0):.0f} s of a {results['budget_s']:.0f} s budget.",
        "",
        "| step | status | seconds | budget |",
        "|---|---|---|---|",
    ]
    for name, step in results["steps"].items():
        lines.append(f"| {name} | {step['status']} | {step['seconds']} | {step['budget_s']:.0f} |")
    for name, step in results["steps"].items():
        lines += ["", f"## {name}", ""]
        if step["status"] != "ok":
            lines.append(f"**{step['status']}**: {step.get('error', '')}")
            continue
        lines += RENDER.get(name, _as_json)(step)
    return "\n".join(lines) + "\n"


def _as_json(step: dict[str, Any]) -> list[str]:
    shown = {k: v for k, v in step.items() if k not in ("status", "seconds", "budget_s")}
    return ["```json", json.dumps(shown, indent=1), "```"]


def _table_lines(step: dict[str, Any]) -> list[str]:
    lines = [
        f"{step['rows']} row(s) x {step['epochs']} epoch(s) on {step['dataset']}; extrapolated to {TABLE_EPOCHS} "
        "epochs: scaled whole (an upper bound), and modelled (each trial's overhead + 40 epochs, K at a time).",
        "",
        "| trials per device | exit | wall s | trials | trial-epochs | epoch s | overhead/trial s "
        "| 40 epochs, scaled | 40 epochs, modelled | precision |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for per_device, run in step["runs"].items():
        cells = [per_device, run.get("exit"), run["wall_s"], run.get("trials_complete"), run.get("trial_epochs")]
        cells += [run.get(k) for k in ("epoch_s_mean", "overhead_per_trial_s")]
        cells += [run.get(k) for k in ("extrapolated_40_scaled_s", "extrapolated_40_modelled_s")]
        cells.append(", ".join(run.get("precision", [])))
        lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    errors = [f"- {k}: {run['error']}" for k, run in step["runs"].items() if run.get("error")]
    report = next((run["report"] for run in step["runs"].values() if run.get("report")), None)
    return (
        lines + ([""] + errors if errors else []) + (["", "### the report (first run)", "", report] if report else [])
    )


def _throughput_lines(step: dict[str, Any]) -> list[str]:
    lines = [
        f"img/s, {step['steps']} timed steps a case on {step['dataset']}; amp's pick from its own measurement",
        "",
        "| model | batch | fp32 | bf16 | bf16/fp32 | fp32 channels_last | bf16 channels_last | amp picks (measured) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, r in step["models"].items():
        if "skipped" in r:
            lines.append(f"| {model} | {r['skipped']} |")
            continue
        measured = ", ".join(f"{k} {v}" for k, v in r["amp_measured"].items())
        cells = [model, r["batch_size"], r["fp32_nchw_img_s"], r["bf16_nchw_img_s"], r["bf16_vs_fp32"]]
        cells += [r.get("fp32_channels_last_img_s", ""), r.get("bf16_channels_last_img_s", "")]
        cells.append(f"{r['amp_picks']} ({measured})")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


def _profile_lines(step: dict[str, Any]) -> list[str]:
    lines = []
    for model, p in ((k, v) for k, v in step.items() if isinstance(v, dict)):
        device = "n/a" if p["device_busy_share"] is None else f"{p['device_busy_share']:.0%}"
        lines += [
            f"### {model} (batch {p['batch_size']}, {p['steps']} steps)",
            "",
            f"{p['wall_ms_per_step']} ms a step; device busy {device} of the wall, host busy "
            f"{p['host_busy_share']:.0%}; {p['host_syncs_per_step']} host syncs and {p['launches_per_step']} "
            "kernel launches a step.",
            "",
            "| kernel (or op, on the CPU) | calls | ms |",
            "|---|---|---|",
            *(f"| {t['name'].replace('|', '/')} | {t['calls']} | {t['ms']} |" for t in p["top"]),
            "",
        ]
    return lines


def _groups_lines(step: dict[str, Any]) -> list[str]:
    lines = [
        f"images/s of all K trials, fused into one group and one by one, {step['steps']} timed steps a case; "
        "dispatched ops per trial-step (top-level aten ops of a fused step against one solo step's)",
        "",
        "| case | batch | K | one by one | fused | fused/one by one | ops solo | ops fused | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in step["rows"]:
        cells = [r["case"], r["batch"], r["members"], round(r["one_by_one_img_s"]), round(r["fused_img_s"])]
        cells += [f"{r['speedup']:.2f}", r["solo_ops"], r["fused_ops"], f"{r['ops_ratio']:.2f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += [f"- not measured (time): {case}" for case in step["skipped"]]
    table = step["table"]
    lines += [
        "",
        f"### the DCGAN64 table as groups: {table['trials']} trials in {table['groups']} groups, {table['epochs']} "
        f"epochs on {table['dataset']}: predicted {table['grouped_s']} s grouped, {table['one_by_one_s']} s one by one",
        "",
        "| members | batch | latent | img/s alone | img/s grouped | one by one s | grouped s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table["plan"]:
        cells = [r["members"], r["batch_size"], r["latent_dim"]]
        cells += [r.get(k, r.get("skipped", "")) for k in ("img_s_alone", "img_s_grouped", "one_by_one_s", "grouped_s")]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


RENDER = {"table": _table_lines, "groups": _groups_lines, "throughput": _throughput_lines, "profile": _profile_lines}


if __name__ == "__main__":
    main()
