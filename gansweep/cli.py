"""The ``gansweep`` command: a table of subcommands, each a parser builder and a handler.

Every handler returns an exit code. Errors a user can fix (``GansweepError``) print one line naming
what is wrong and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from gansweep.errors import GansweepError, redact

EXIT_USAGE = 2
STORE_MODULES = ("sqlalchemy", "psycopg", "mlflow", "optuna.storages")
"""Errors raised by the stores' clients (a database or tracking server gone mid-run): one line, not a
traceback; gansweep's own bugs still show theirs."""
EXIT_DIVERGED = 1
"""`gansweep train` whose losses went NaN/inf: the history up to there is still written."""


def _add_hyperparameter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hyperparameters (unset = the model's report defaults; see `gansweep list models`)"
    )
    group.add_argument("--lr", type=float, help="learning rate of both G and D")
    group.add_argument("--lr-g", type=float, help="generator learning rate (overrides --lr)")
    group.add_argument("--lr-d", type=float, help="discriminator learning rate (overrides --lr)")
    group.add_argument("--batch-size", type=int, help="real images per discriminator step")
    group.add_argument("--latent-dim", type=int, help="noise dimensions (InfoGAN: without its 12 codes)")
    group.add_argument("--betas", help="Adam betas as B1,B2 (default 0.5,0.999)")
    group.add_argument("--width", type=int, help="channel width of dcgan28/dcgan64 (default 128)")
    group.add_argument("--loss", help="adversarial loss: bce, minimax or lsgan (default bce)")
    group.add_argument("--d-steps", type=int, help="discriminator updates per generator update (default 1)")


def _add_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a zoo model (see `gansweep list models`)")
    parser.add_argument("--dataset", default="mnist-5k", help="mnist-5k (embedded, default), mnist or fashion-mnist")
    parser.add_argument(
        "--data-dir", default="data", help="where mnist/fashion-mnist live or are downloaded (default ./data)"
    )
    parser.add_argument("--epochs", type=int, help="passes over the training split")
    _add_hyperparameter_flags(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, noise and batch order (default 0)")
    parser.add_argument(
        "--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, ... (default auto)"
    )
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (fast on CUDA; runs on the CPU too)")
    parser.add_argument(
        "--out", type=Path, help="write history, samples and checkpoint.pt (after every epoch) into this folder"
    )
    parser.add_argument("--resume", type=Path, help="continue from a checkpoint.pt of the same trial")
    parser.add_argument("--json", action="store_true", help="print the history as JSON on stdout")


def _train(args: argparse.Namespace) -> int:
    from gansweep.artifacts import write_history
    from gansweep.checkpoint import EpochCheckpoint
    from gansweep.checkpoint import load as load_checkpoint
    from gansweep.checkpoint import save as save_checkpoint
    from gansweep.data import load_dataset
    from gansweep.hparams import resolve_hyperparameters
    from gansweep.models import MODELS
    from gansweep.progress import EpochProgress
    from gansweep.trainer import Trainer

    given = {
        key: getattr(args, key)
        for key in ("lr", "lr_g", "lr_d", "batch_size", "latent_dim", "betas", "width", "loss", "d_steps", "epochs")
        if getattr(args, key) is not None
    }
    if args.model not in MODELS:
        raise GansweepError(f"--model: unknown model {args.model!r}; choose one of: {', '.join(MODELS)}")
    digits = load_dataset(args.dataset, args.data_dir)
    hp = resolve_hyperparameters(args.model, given, n_train=len(digits.train_images), dataset=args.dataset)
    progress = EpochProgress(f"{args.model} on {args.dataset}")
    saves = [EpochCheckpoint(args.out)] if args.out else []  # before the progress line, which Ctrl-C may stop
    trainer = Trainer(
        args.model, digits, hp, seed=args.seed, device=args.device, amp=args.amp, callbacks=[*saves, progress]
    )
    if args.resume:
        load_checkpoint(trainer, args.resume)
    history = trainer.fit()
    if args.out:
        write_history(history, args.out)
        save_checkpoint(trainer, args.out)
        progress.console.print(
            f"wrote {args.out}/: history.json, epochs.csv, steps.csv, samples.npy, samples_final.png, checkpoint.pt"
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


def _add_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["models", "datasets", "losses"], help="what to list")
    parser.add_argument("--json", action="store_true", help="print as JSON")


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gansweep.data import DATASETS
    from gansweep.losses import LOSSES
    from gansweep.models import MODELS

    if args.what == "models":
        rows = [
            {
                "name": s.name,
                "image_size": s.image_size,
                "defaults": s.defaults,
                "summary": s.summary,
                "source": s.source,
            }
            for s in MODELS.values()
        ]
    elif args.what == "losses":
        rows = [{"name": loss.name, "summary": loss.description} for loss in LOSSES.values()]
    else:
        rows = [{"name": name} for name in DATASETS]
    if args.json:
        print(json.dumps(rows))
        return 0
    table = Table(*[key for key in rows[0] if key != "source"])
    for row in rows:
        cells = [
            ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            for key, value in row.items()
            if key != "source"
        ]
        table.add_row(*cells)
    Console().print(table)
    return 0


def _add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", type=Path, help="the sweep file (grid.yaml); see sweeps/ for examples")
    _add_storage_flags(parser, tracking=True)
    parser.add_argument(
        "--workers", type=int, default=1, help="trials trained at once, as processes sharing this machine (default 1)"
    )
    parser.add_argument(
        "--devices", help="comma-separated devices, one worker each (e.g. cuda:0,cuda:1); overrides --workers"
    )
    parser.add_argument(
        "--trials-per-device",
        type=int,
        default=1,
        help="with --devices: workers per device, for small models that leave a GPU idle (default 1)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="queue again the points whose trial raised an error (killed or interrupted trials are always resumed)",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=15,
        metavar="SECONDS",
        help="with --storage: seconds between a worker's heartbeats; a trial whose worker misses several in a row is taken over by another worker (default 15)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the trials and how many are complete; train nothing"
    )
    parser.add_argument("--json", action="store_true", help="with --dry-run: print the trials as a JSON list")


def _add_storage_flags(parser: argparse.ArgumentParser, tracking: bool = False) -> None:
    """Where a sweep's state lives. Credentials belong in the URL or the environment, never in a grid file."""
    parser.add_argument("--name", help="study/experiment name (default: the file's `name:` or its stem)")
    parser.add_argument(
        "--store",
        type=Path,
        default=Path("mlruns"),
        help="folder for the default stores: mlflow.db, artifacts/, optuna.journal (default ./mlruns)",
    )
    parser.add_argument(
        "--storage",
        default=os.environ.get("GANSWEEP_STORAGE"),
        help="Optuna RDB URL shared by every process and machine of the sweep, e.g. postgresql://user:pass@host/db "
        "(default: $GANSWEEP_STORAGE, else the journal file in --store, for one `gansweep run` at a time)",
    )
    if tracking:
        parser.add_argument(
            "--tracking-uri",
            default=os.environ.get("MLFLOW_TRACKING_URI"),
            help="MLflow tracking URI, e.g. http://host:5000 (default: $MLFLOW_TRACKING_URI, else sqlite in --store)",
        )


def _sweep_settings(args: argparse.Namespace):
    from gansweep.config import load_config
    from gansweep.sweep import SweepSettings

    config = load_config(args.grid)
    for flag in ("workers", "trials_per_device", "heartbeat"):
        if getattr(args, flag) < 1:
            raise GansweepError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.devices:
        devices = tuple(d.strip() for d in args.devices.split(",") if d.strip() for _ in range(args.trials_per_device))
    else:
        devices = (config.device,) * args.workers
    return SweepSettings(
        config=config,
        config_text=args.grid.read_text(),
        study_name=args.name or config.name,
        store=args.store,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        devices=devices,
        heartbeat=args.heartbeat,
        retry_failed=args.retry_failed,
    )


def _run(args: argparse.Namespace) -> int:
    from gansweep.config import plan_trials
    from gansweep.data import TRAIN_SIZES, load_dataset

    settings = _sweep_settings(args)
    config = settings.config
    plans = plan_trials(config, TRAIN_SIZES[config.dataset], str(args.grid))
    if args.dry_run:
        return _dry_run(settings, plans, args.json)
    from gansweep.progress import SweepProgress
    from gansweep.sweep import State, run_sweep

    load_dataset(config.dataset, config.data_dir)  # fail on missing data before any store is touched
    if settings.tracking_uri and settings.tracking_uri.startswith(("http://", "https://")):
        from gansweep.tracking import check_server

        check_server(settings.tracking_uri)
    with SweepProgress() as progress:
        result = run_sweep(settings, plans, progress)
    plans = result.plans
    print(_sweep_report(settings, plans, result.parent_run))
    missing = [p for p in plans if result.states.get(p.key) != State.COMPLETE]
    print(
        f"{len(plans) - len(missing)}/{len(plans)} trials complete, {result.trained} trained in this run; "
        f"MLflow: {redact(settings.mlflow_uri)} (gansweep ui to browse)"
    )
    for key, error in result.failed.items():
        print(f"failed: {key}: {error}", file=sys.stderr)
    if result.failed and not result.fatal:
        print(
            f"{len(result.failed)} trial(s) failed: fix the cause, then run the same command with --retry-failed",
            file=sys.stderr,
        )
    if result.fatal:
        print(f"error: {result.fatal}", file=sys.stderr)
        return EXIT_USAGE
    if result.interrupted:
        print("interrupted: run the same command again to finish the missing trials", file=sys.stderr)
        return 130
    return 0 if not missing else 1


def _sweep_report(settings, plans, parent_run: str) -> str:
    """The markdown report of the store, also written (with heatmaps) to the sweep's parent run."""
    import tempfile

    from gansweep.report import collect_rows, heatmaps, to_markdown
    from gansweep.sweep import open_study
    from gansweep.tracking import Tracker

    tracker = Tracker(settings.mlflow_uri, settings.study_name, create=False)
    rows = collect_rows(open_study(settings, create=False).get_trials(deepcopy=False), plans)
    text = to_markdown(rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "report.md").write_text(text)
        heatmaps(rows, folder)
        tracker.log_artifacts(parent_run, folder, "report")
    return text


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", help="a grid.yaml (rows in its order, missing points shown) or a sweep name (its MLflow experiment)"
    )
    parser.add_argument("--format", choices=["md", "csv", "json"], default="md", help="output format (default md)")
    parser.add_argument("--out", type=Path, help="write the report here, with heatmap PNGs beside it (default: stdout)")
    _add_storage_flags(parser)


def _add_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", type=Path, help="the sweep file (grid.yaml)")
    _add_storage_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per point, as a list")


def _status(args: argparse.Namespace) -> int:
    from gansweep.config import load_config, plan_trials
    from gansweep.data import TRAIN_SIZES
    from gansweep.sweep import State, SweepSettings, open_study, point_status

    config = load_config(args.grid)
    plans = plan_trials(config, TRAIN_SIZES[config.dataset], str(args.grid))
    settings = SweepSettings(config, "", args.name or config.name, args.store, storage=args.storage)
    study = open_study(settings, create=False)
    rows = point_status(study.get_trials(deepcopy=False) if study else [], plans, config.n_search)
    if args.json:
        print(json.dumps(rows))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("#", "point", "state", "worker", "epoch", "detail", "run", title=settings.study_name)
    for i, row in enumerate(rows):
        epoch = f"{row['epoch']}/{row['epochs']}" if row["epochs"] else ""
        table.add_row(str(i), row["label"], row["state"], row["worker"], epoch, row["detail"][:80], row["run_id"][:8])
    Console().print(table)
    always = (State.COMPLETE, State.RUNNING, State.FAILED, State.WAITING)
    counts = {state: sum(r["state"] == state for r in rows) for state in (*always, State.PRUNED, State.INTERRUPTED)}
    print(", ".join(f"{n} {state.value}" for state, n in counts.items() if n or state in always))
    return 0


def _report(args: argparse.Namespace) -> int:
    from gansweep.config import load_config, plan_trials
    from gansweep.data import TRAIN_SIZES
    from gansweep.report import FORMATS, collect_rows, heatmaps
    from gansweep.sweep import SweepSettings, open_study

    plans, config, name = None, None, args.name or args.target
    if Path(args.target).is_file():
        config = load_config(args.target)
        plans = plan_trials(config, TRAIN_SIZES[config.dataset], args.target)
        name = args.name or config.name
    settings = SweepSettings(config, "", name, args.store, storage=args.storage)  # type: ignore[arg-type]
    study = open_study(settings, create=False)
    if study is None:
        raise GansweepError(
            f"no sweep named {name!r} in {redact(args.storage or str(args.store))}: run it first, or check --store/--storage"
        )
    rows = collect_rows(study.get_trials(deepcopy=False), plans)
    text = FORMATS[args.format](rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        written = heatmaps(rows, args.out.parent)
        print(f"wrote {args.out} and {len(written)} heatmap(s) beside it", file=sys.stderr)
    else:
        print(text)
    return 0


def _dry_run(settings, plans, as_json: bool) -> int:
    from gansweep.sweep import State, complete_search_trials, open_study, states_by_key

    study = open_study(settings, create=False)
    states = states_by_key(study.get_trials(deepcopy=False) if study else [])
    rows = [{**p.as_row(), "state": states.get(p.key, State.WAITING).value} for p in plans]
    complete = sum(r["state"] == State.COMPLETE.value for r in rows)
    if as_json:
        print(json.dumps(rows))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "#", "model", "lr_g", "lr_d", "batch", "latent", "seed", "state", "reported", title=settings.study_name
    )
    for i, row in enumerate(rows):
        table.add_row(
            str(i),
            row["model"],
            f"{row['lr_g']:g}",
            f"{row['lr_d']:g}",
            str(row["batch_size"]),
            str(row["latent_dim"]),
            str(row["seed"]),
            row["state"],
            row["reported"] or "",
        )
    Console().print(table)
    print(f"{len(rows)} trials, {complete} already complete")
    search = settings.config.search
    if search is not None:
        done = 0 if study is None else complete_search_trials(study)
        print(
            f"plus search: {search.n_trials} trials of {search.model} sampled by {search.sampler}, {done} already complete"
        )
    return 0


def _add_ui(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", type=Path, default=Path("mlruns"), help="the store folder of `gansweep run` (default ./mlruns)"
    )
    parser.add_argument("--tracking-uri", help="browse this tracking URI instead")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)"
    )
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")


def _ui(args: argparse.Namespace) -> int:
    import subprocess

    from gansweep.tracking import default_tracking_uri

    uri = args.tracking_uri or default_tracking_uri(args.store)
    if not args.tracking_uri and not (args.store / "mlflow.db").exists():
        raise GansweepError(
            f"no MLflow store at {args.store}/mlflow.db: run `gansweep run grid.yaml` first, or pass --store"
        )
    print(f"MLflow UI for {uri} at http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    if not args.tracking_uri:
        command += ["--default-artifact-root", (args.store / "artifacts").resolve().as_uri()]
    return subprocess.call(command)


def _add_diagnose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", nargs="?", help="an MLflow run made by gansweep (else give --history)")
    parser.add_argument("--history", type=Path, help="CSV, one row per epoch: epoch,d_loss,g_loss[,d_real,d_fake]")
    parser.add_argument(
        "--samples",
        type=Path,
        help="generated images, float32 (N,1,28,28) or (N,28,28) in [-1,1]: a .npy "
        "of the last epoch's, or a .npz with one array per epoch named by it ('5' or 'epoch_5'), "
        "which lets the verdict see a trend",
    )
    parser.add_argument(
        "--dataset", default="mnist-5k", help="the data set the samples imitate (its judge and held-out digits)"
    )
    parser.add_argument("--data-dir", default="data", help="where mnist/fashion-mnist live (default ./data)")
    parser.add_argument("--store", type=Path, default=Path("mlruns"), help="store folder for RUN_ID (default ./mlruns)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI for RUN_ID (default: sqlite in --store)")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"flags": [...], "verdict": ..., "outcome": ..., "metrics": {...}, "evaluations": [...]}',
    )


def _diagnose(args: argparse.Namespace) -> int:
    from gansweep.diagnostics import diagnose

    if (args.run_id is None) == (args.history is None):
        raise GansweepError("give either a RUN_ID or --history H.csv")
    epochs = _run_history(args) if args.run_id else _file_history(args)
    diagnosis = diagnose(epochs)
    if args.json:
        print(json.dumps(diagnosis.to_dict()))
        return 0
    print(f"verdict: {diagnosis.verdict}")
    for flag in diagnosis.flags:
        until = f", recovered by epoch {flag.end}" if flag.end is not None else ""
        print(f"  {flag.name} (epoch {flag.epoch}{until}): {flag.evidence}")
    if diagnosis.evaluations:
        print(
            "  evaluations: "
            + ", ".join(f"{e.epoch} {e.quality} {e.trend or ''}".strip() for e in diagnosis.evaluations)
        )
    for key, value in diagnosis.metrics.items():
        print(f"  {key}: {value:.4g}")
    return 0


def _file_history(args: argparse.Namespace) -> list[dict]:
    from gansweep.diagnostics.files import read_history, read_samples

    epochs = read_history(args.history)
    if args.samples:
        from gansweep.data import load_dataset
        from gansweep.diagnostics import load_judge, sample_metrics
        from gansweep.diagnostics.metrics import Reference

        samples = read_samples(args.samples, [int(r["epoch"]) for r in epochs])
        digits = load_dataset(args.dataset, args.data_dir)
        judge = load_judge(digits)
        reference = Reference.of(judge, digits.heldout_images)
        by_epoch = {int(r["epoch"]): r for r in epochs}
        for epoch, images in samples.items():
            by_epoch[epoch].update(sample_metrics(judge, images, reference))
    return epochs


def _run_history(args: argparse.Namespace) -> list[dict]:
    import tempfile

    from gansweep.tracking import Tracker, default_tracking_uri

    uri = args.tracking_uri or default_tracking_uri(args.store)
    with tempfile.TemporaryDirectory() as tmp:
        path = Tracker.download(uri, args.run_id, "history.json", Path(tmp))
        return json.loads(path.read_text())["epochs"]


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "train": ("train one trial and print its per-epoch losses", _add_train, _train),
    "run": ("run a sweep: train every trial of grid.yaml once, tracked in MLflow", _add_run, _run),
    "list": ("list the model zoo, data sets or losses", _add_list, _list),
    "status": (
        "complete / running / failed / waiting per point of a sweep, and which worker holds it",
        _add_status,
        _status,
    ),
    "report": ("tables of setting vs outcome (markdown, csv, json) and heatmaps, from the store", _add_report, _report),
    "diagnose": (
        "judge a run: D-loss collapse, mode collapse, divergence, instability, low quality, under-training, too early to tell",
        _add_diagnose,
        _diagnose,
    ),
    "ui": ("start the MLflow UI on the sweep store (loopback only by default)", _add_ui, _ui),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gansweep",
        description="Hyperparameter sweeps and experiment tracking for GANs.",
        epilog="Run `gansweep COMMAND --help` for a command's options.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except GansweepError as error:
        if args.debug:
            raise
        print(f"error: {redact(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        if args.debug or not type(error).__module__.startswith(STORE_MODULES):
            raise
        print(f"error: a store failed: {redact(f'{type(error).__name__}: {error}'.splitlines()[0])}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
