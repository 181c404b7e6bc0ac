"""Trainer throughput, side by side in one run: the seed notebooks' loop vs gansweep's trainer.

For each model, on the same device, data, seed and number of steps:
- ``reference``: the loop as the reports write it: a torchvision-style data set with per-item
  transforms (PIL -> ToTensor -> Normalize), ``DataLoader(shuffle=True)``, per-step ``.item()`` on both
  losses appended to lists;
- ``reference+mlflow``: the same plus per-step ``mlflow.log_metric`` calls (SQLite store);
- ``gansweep``: the real ``Trainer`` with its real tracking (``MlflowEpochLogger``, SQLite store);
- ``gansweep+bf16``: the same trainer in bf16 autocast (``amp`` without its measurement), no tracking.
It prints images/s, the ratio to the reference, achieved GFLOP/s (FLOPs counted once per step kind
with ``torch.utils.flop_counter``), that as a fraction of a matmul peak measured in the same run,
tracking's share of gansweep's wall time (the time the training loop waited on tracking: its calls are
made by a background thread, so this is the queueing; ``send`` never waits on the store), the
tracking tail (the wait, after the last epoch, for the calls still on their way: paid once per trial, and in
these one-epoch cases it is that epoch's whole ``log_batch``, outside the images/s), the warm per-trial
overhead (trial start to first step), and the evaluation's share of a trial that is evaluated after every
epoch (the default): one evaluation (``SampleEvaluator``: 256 samples generated and judged) against one full
mnist-5k epoch at the measured rate.

    .venv/bin/python benchmarks/bench_trainer.py                # all models, medians of 3
    .venv/bin/python benchmarks/bench_trainer.py --models mlp --repeats 1 --json
    .venv/bin/python benchmarks/bench_trainer.py --quick       # 2 steps a case: that it runs, not a measurement
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._args import MOST_REPEATS, Parser, whole  # noqa: E402
from benchmarks._args import device as device_flag  # noqa: E402
from gansweep.data import Digits, load_dataset  # noqa: E402
from gansweep.diagnostics import SampleEvaluator, load_judge  # noqa: E402
from gansweep.diagnostics.metrics import Reference  # noqa: E402
from gansweep.hparams import resolve_hyperparameters  # noqa: E402
from gansweep.losses import LOSSES  # noqa: E402
from gansweep.trainer import Trainer, TrainerCallback, discriminator_step, generator_step, resolve_device  # noqa: E402

CASES = {
    # name: (model, extra hyperparameters, batch size, steps)
    "mlp": ("mlp", {}, 128, 30),
    "cs231n-mlp": ("cs231n-mlp", {}, 128, 30),
    "dcgan28-w32": ("dcgan28", {"width": 32}, 64, 20),
    "dcgan28-w128": ("dcgan28", {"width": 128}, 64, 8),
}


class ReferenceDigits(torch.utils.data.Dataset):
    """What torchvision's MNIST does per item: a PIL image through ToTensor and Normalize."""

    def __init__(self, images: torch.Tensor, size: int) -> None:
        import torchvision.transforms as T

        self.images = images
        steps = [T.Resize(size)] if size != 28 else []
        self.transform = T.Compose([*steps, T.ToTensor(), T.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i, 0].numpy(), mode="L")), 0


def reference_loop(trainer: Trainer, images: torch.Tensor, steps: int, log_metric=None) -> float:
    """The notebook loop on the trainer's own networks, with the notebooks' default Adam; returns seconds."""
    loader = torch.utils.data.DataLoader(
        ReferenceDigits(images, trainer.spec.image_size), batch_size=trainer.hp.batch_size, shuffle=True, drop_last=True
    )
    loss = LOSSES["bce"]
    G, D, dev, hp = trainer.generator, trainer.discriminator, trainer.device, trainer.hp
    opt_g = torch.optim.Adam(trainer.g_params, lr=hp.lr_g, betas=hp.betas)
    opt_d = torch.optim.Adam(trainer.d_params, lr=hp.lr_d, betas=hp.betas)
    d_losses, g_losses = [], []
    started = time.perf_counter()
    for step, (real, _) in enumerate(loader):
        if step == steps:
            break
        real = real.to(dev)
        z = torch.randn(len(real), trainer.hp.latent_dim, device=dev)
        fake = G(z)
        d_loss = loss.discriminator(D(real), D(fake.detach()))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = loss.generator(D(fake))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        d_losses.append(d_loss.item())
        g_losses.append(g_loss.item())
        if log_metric:
            log_metric("d_loss", d_losses[-1], step=step)
            log_metric("g_loss", g_losses[-1], step=step)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def flops_per_step(trainer: Trainer) -> float:
    """FLOPs of one D step plus one G step (forward and backward), counted by PyTorch."""
    from torch.utils.flop_counter import FlopCounterMode

    real = trainer.images[: trainer.hp.batch_size]
    with FlopCounterMode(display=False) as counter:
        latent, fake, *_ = discriminator_step(trainer, real, None)
        generator_step(trainer, latent, fake)
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


class FirstStep(TrainerCallback):
    def __init__(self) -> None:
        self.at: float | None = None

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None:
        if self.at is None:
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            self.at = time.perf_counter()


def evaluation_seconds(trainer: Trainer, judge, heldout: Reference, repeats: int = 3) -> float:
    """Median time of one evaluation: the sweep's own ``SampleEvaluator`` after the trainer's last epoch."""
    evaluator, times = SampleEvaluator(judge, heldout), []
    for _ in range(repeats):
        started = time.perf_counter()
        evaluator.on_epoch(trainer, {})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_case(
    name: str, digits: Digits, device: torch.device, tracker, parent: str, judge, heldout, steps: int | None = None
) -> dict[str, float]:
    from gansweep.sending import Sender
    from gansweep.tracking import MlflowEpochLogger

    model, extra, batch, case_steps = CASES[name]
    steps = steps or case_steps
    n = batch * steps
    subset = Digits(
        "bench", digits.train_images[:n], digits.train_labels[:n], digits.heldout_images, digits.heldout_labels
    )
    hp = resolve_hyperparameters(model, {**extra, "batch_size": batch, "epochs": 1})

    def fresh(callbacks=None, amp: bool = False) -> Trainer:  # amp_steps=0: bf16 itself, not amp's choice
        return Trainer(model, subset, hp, seed=0, device=device, amp=amp, callbacks=callbacks, amp_steps=0)

    import mlflow

    reference = reference_loop(fresh(), subset.train_images, steps)
    mlflow.set_tracking_uri(tracker.uri)
    with mlflow.start_run(experiment_id=tracker.experiment_id, run_name=f"{name} naive"):
        naive = reference_loop(fresh(), subset.train_images, steps, log_metric=mlflow.log_metric)

    started = time.perf_counter()  # a warm worker: data on the device, tracker open
    run_id = tracker.start_trial(parent, name, hp.as_params(), {})
    first = FirstStep()
    with Sender() as sender:
        logger = MlflowEpochLogger(tracker, run_id, sender)
        trainer = fresh([first, logger])
        fit_started = time.perf_counter()
        trainer.fit()
        gansweep = time.perf_counter() - fit_started
        flush_started = time.perf_counter()
        sender.flush()  # what a sweep waits for before it publishes the trial
        tail = time.perf_counter() - flush_started
    tracker.end_trial(run_id, "FINISHED")
    per_image = gansweep / n
    evaluation = evaluation_seconds(trainer, judge, heldout)
    epoch = per_image * (len(digits.train_images) // batch) * batch
    flops = flops_per_step(fresh()) * steps
    bf16 = fresh(amp=True)
    bf16_started = time.perf_counter()
    bf16.fit()
    bf16_seconds = time.perf_counter() - bf16_started
    return {
        "reference_img_s": n / reference,
        "naive_mlflow_img_s": n / naive,
        "gansweep_img_s": n / gansweep,
        "speedup": reference / gansweep,
        "bf16_img_s": n / bf16_seconds,
        "bf16_speedup": reference / bf16_seconds,
        "gflops": flops / gansweep / 1e9,
        "tracking_share": logger.seconds / gansweep,
        "tracking_tail_s": tail,
        "warm_overhead_s": first.at - started - per_image * batch,  # minus the first step's own compute
        "eval_share": evaluation / (epoch + evaluation),
    }


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=whole(1, MOST_REPEATS), default=3, help="runs per case; medians are printed")
    parser.add_argument("--device", type=device_flag, default="auto")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help="2 steps a case and a small matmul peak: checks that the script runs"
    )
    args = parser.parse_args()

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    from gansweep.tracking import Tracker

    device = resolve_device(args.device)
    digits = load_dataset("mnist-5k")
    judge = load_judge(digits)
    heldout = Reference.of(judge, digits.heldout_images)
    with tempfile.TemporaryDirectory() as tmp:
        tracker = Tracker(f"sqlite:///{tmp}/mlflow.db", "bench", Path(tmp) / "artifacts")
        parent = tracker.sweep_run("bench", "")
        peak = statistics.median(matmul_peak(device, n=256 if args.quick else 2048) for _ in range(3))
        results = {}
        for name in args.models:
            runs = [
                run_case(name, digits, device, tracker, parent, judge, heldout, 2 if args.quick else None)
                for _ in range(args.repeats)
            ]
            results[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results[name]["peak_fraction"] = results[name]["gflops"] / peak
    machine = f"{device.type}" + (
        f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f", {torch.get_num_threads()} threads"
    )
    if args.json:
        print(
            json.dumps({"device": machine, "matmul_peak_gflops": peak, "torch": torch.__version__, "results": results})
        )
        return
    print(
        f"device: {machine}; torch {torch.__version__}; matmul peak {peak:.1f} GFLOP/s (fp32 2048x2048); medians of {args.repeats}"
    )
    print(
        f"{'case':<14}{'reference':>11}{'+mlflow':>10}{'gansweep':>10}{'speedup':>9}{'+bf16':>9}{'speedup':>9}"
        f"{'GFLOP/s':>9}{'of peak':>9}{'tracking':>10}{'tail':>8}{'overhead':>10}{'eval':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:<14}{r['reference_img_s']:>9.0f}/s{r['naive_mlflow_img_s']:>8.0f}/s{r['gansweep_img_s']:>8.0f}/s"
            f"{r['speedup']:>8.2f}x{r['bf16_img_s']:>7.0f}/s{r['bf16_speedup']:>8.2f}x"
            f"{r['gflops']:>9.1f}{r['peak_fraction']:>8.0%}{r['tracking_share']:>10.2%}{r['tracking_tail_s']:>7.3f}s"
            f"{r['warm_overhead_s']:>9.3f}s"
            f"{r['eval_share']:>8.1%}"
        )


if __name__ == "__main__":
    main()
