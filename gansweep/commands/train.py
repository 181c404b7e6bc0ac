"""`gansweep train`: one trial, its per-epoch losses printed, optionally written and resumable."""

from __future__ import annotations

import argparse
import json
import sys

from rich.markup import escape

from gansweep import checkpoint
from gansweep.artifacts import write_history
from gansweep.commands._shared import writable_folder
from gansweep.config import MAX_SEED
from gansweep.data import load_dataset
from gansweep.errors import GansweepError
from gansweep.hparams import resolve_hyperparameters
from gansweep.models import MODELS
from gansweep.options import HYPERPARAMETERS
from gansweep.progress import EpochProgress
from gansweep.trainer import Trainer, device_problem

EXIT_DIVERGED = 1
"""`gansweep train` whose losses went NaN/inf: the history up to there is still written."""


def main(args: argparse.Namespace) -> int:
    given = {h.name: getattr(args, h.name) for h in HYPERPARAMETERS if getattr(args, h.name) is not None}
    if args.model not in MODELS:
        raise GansweepError(f"--model: unknown model {args.model!r}; choose one of: {', '.join(MODELS)}")
    if problem := device_problem(args.device):
        raise GansweepError(f"--device {problem}")
    if not 0 <= args.seed <= MAX_SEED:
        raise GansweepError(f"--seed must be 0 to {MAX_SEED}, got {args.seed}")
    if args.out:
        writable_folder(args.out, "--out")
    digits = load_dataset(args.dataset, args.data_dir)
    hp = resolve_hyperparameters(args.model, given, n_train=len(digits.train_images), dataset=args.dataset)
    progress = EpochProgress(f"{args.model} on {args.dataset}")
    # Before the progress line, which Ctrl-C may stop.
    saves = [checkpoint.EpochCheckpoint(args.out)] if args.out else []
    trainer = Trainer(
        args.model, digits, hp, seed=args.seed, device=args.device, amp=args.amp, callbacks=[*saves, progress]
    )
    if args.resume:
        checkpoint.load(trainer, args.resume)
    history = trainer.fit()
    if args.out:
        write_history(history, args.out)
        checkpoint.save_state(trainer, args.out)  # write_history wrote its history files above
        progress.console.print(  # the path as given: a folder named "a[/]b" is no markup (it raised after training)
            f"wrote {escape(str(args.out))}/: history.json, epochs.csv, steps.csv, samples.npy, samples_final.png, "
            "checkpoint.pt"
        )
    if args.json:
        json.dump(
            {
                "model": args.model,
                "dataset": args.dataset,
                "seed": args.seed,
                "hyperparameters": hp.as_params(),
                **history.to_dict(),
            },
            sys.stdout,
        )
        sys.stdout.write("\n")
    if history.stopped:
        progress.console.print(f"stopped early: {history.stopped}")
    return EXIT_DIVERGED if history.stopped and history.stopped.startswith("non-finite") else 0
