"""What each `gansweep` command does, once ``cli`` has parsed its arguments: one handler per command,
each returning an exit code. Errors a user can fix raise ``GansweepError``; ``cli.main`` prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gansweep import checkpoint
from gansweep.artifacts import write_history
from gansweep.config import MAX_SEED, TrialPlan, load_config, plan_trials
from gansweep.data import DATASETS, TRAIN_SIZES, load_dataset
from gansweep.diagnostics import diagnose, files, load_judge, sample_metrics
from gansweep.diagnostics.metrics import Reference
from gansweep.errors import EXIT_USAGE, GansweepError, redact
from gansweep.hparams import resolve_hyperparameters
from gansweep.losses import LOSSES
from gansweep.models import MODELS
from gansweep.options import HYPERPARAMETERS, RunOptions, name_problem
from gansweep.progress import EpochProgress, SweepProgress
from gansweep.sweep import (
    State,
    SweepSettings,
    Terminated,
    complete_search_trials,
    open_study,
    point_status,
    run_sweep,
    states_by_key,
)
from gansweep.tables import FORMATS, collect_rows, heatmaps, to_markdown
from gansweep.tracking import Tracker, check_tracking, default_tracking_uri, experiment_id
from gansweep.trainer import Trainer, device_problem, resolve_device

EXIT_DIVERGED = 1
"""`gansweep train` whose losses went NaN/inf: the history up to there is still written."""


def _train(args: argparse.Namespace) -> int:
    given = {h.name: getattr(args, h.name) for h in HYPERPARAMETERS if getattr(args, h.name) is not None}
    if args.model not in MODELS:
        raise GansweepError(f"--model: unknown model {args.model!r}; choose one of: {', '.join(MODELS)}")
    if problem := device_problem(args.device):
        raise GansweepError(f"--device {problem}")
    if not 0 <= args.seed <= MAX_SEED:
        raise GansweepError(f"--seed must be 0 to {MAX_SEED}, got {args.seed}")
    if args.out:
        _writable_folder(args.out, "--out")
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


def _writable_folder(folder: Path, flag: str, fix: str = "give a folder") -> None:
    """Checked before the work, which would otherwise be lost when its result cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise GansweepError(f"{flag} {folder}: cannot write into that folder ({error.strerror}); {fix}") from None


def _cores() -> int:
    """The cores this process may use (a cgroup's or Slurm's share, where the system says; macOS does not)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def writable_store(settings: SweepSettings) -> None:
    """The default store's artifacts folder and MLflow database take writes (else the first trial would
    train, then fail to record anything)."""
    fix = "make it writable, or pass another --store"
    if settings.artifact_root is not None and settings.artifact_root.exists():
        _writable_folder(settings.artifact_root, "store", fix)
    database = settings.store / "mlflow.db"
    if not settings.tracking_uri and database.exists() and not os.access(database, os.R_OK | os.W_OK):
        raise GansweepError(f"store {database}: the MLflow database is read-only; {fix}")


def _list(args: argparse.Namespace) -> int:

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


def _sweep_settings(args: argparse.Namespace) -> SweepSettings:
    return sweep_settings(args.grid, RunOptions(**{f.name: getattr(args, f.name) for f in fields(RunOptions)}))


def sweep_settings(grid: Path, options: RunOptions) -> SweepSettings:
    """`gansweep run`'s options, checked, as the sweep's settings (the Python API passes the same)."""
    config = load_config(grid)
    if options.name is not None and (problem := name_problem(options.name)):
        raise GansweepError(f"--name {problem}")
    for flag in ("workers", "trials_per_device", "heartbeat"):
        if getattr(options, flag) < 1:
            raise GansweepError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(options, flag)}")
    if options.devices:
        listed = [d.strip() for d in options.devices.split(",") if d.strip()]
        chosen = tuple(d for d in listed for _ in range(options.trials_per_device))
        if not chosen:
            raise GansweepError(f"--devices {options.devices!r} names no device: give e.g. cuda:0,cuda:1 or cpu")
    else:
        chosen = (config.device,) * options.workers
    on_cpu = [d for d in chosen if d == "cpu" or (d == "auto" and resolve_device().type == "cpu")]
    if len(on_cpu) > (cores := _cores()):
        raise GansweepError(
            f"{len(on_cpu)} CPU workers with {cores} CPU cores: at most {cores} "
            f"(each worker is a process, more only share the cores); lower --workers or --trials-per-device"
        )
    return SweepSettings(
        config=config,
        config_text=grid.read_bytes().decode("utf-8-sig"),  # load_config read it as that
        study_name=options.name or config.name,
        store=options.store,
        storage=options.storage,
        tracking_uri=options.tracking_uri,
        devices=chosen,
        heartbeat=options.heartbeat,
        retry_failed=options.retry_failed,
    )


def check_devices(settings: SweepSettings, source: str) -> None:
    """Every worker's device exists on this machine (not needed for a dry run, which trains nothing)."""
    for device in dict.fromkeys(settings.devices):
        if problem := device_problem(device):
            raise GansweepError(f"{source} {problem}")


def _run(args: argparse.Namespace) -> int:

    settings = _sweep_settings(args)
    config = settings.config
    plans = plan_trials(config, TRAIN_SIZES[config.dataset], str(args.grid))
    if args.dry_run:
        return _dry_run(settings, plans, args.json)

    check_devices(settings, "--devices" if args.devices else f"{args.grid}: device")
    load_dataset(config.dataset, config.data_dir)  # fail on missing data before any store is touched
    if settings.tracking_uri:
        check_tracking(settings.tracking_uri)
    writable_store(settings)
    with SweepProgress() as progress, _on_sigterm(Terminated):
        result = run_sweep(settings, plans, progress)
    plans = result.plans
    print(sweep_report(settings, plans, result.parent_run))
    missing = [p for p in plans if p.key not in result.states or not result.states[p.key].done]  # pruned: done
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


def sweep_report(settings: SweepSettings, plans: list[TrialPlan], parent_run: str) -> str:
    """The markdown report of the store, also written (with heatmaps) to the sweep's parent run."""

    tracker = Tracker(settings.mlflow_uri, settings.study_name, create=False)
    rows = collect_rows(open_study(settings, create=False).get_trials(deepcopy=False), plans)
    text = to_markdown(rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "report.md").write_text(text)
        heatmaps(rows, folder)
        tracker.log_artifacts(parent_run, folder, "report")
    tracker.describe(parent_run, text)
    return text


def _status(args: argparse.Namespace) -> int:

    config = load_config(args.grid)
    plans = plan_trials(config, TRAIN_SIZES[config.dataset], str(args.grid))
    settings = SweepSettings(config, "", args.name or config.name, args.store, storage=args.storage)
    study = open_study(settings, create=False)
    if study is None and not settings.shared and not settings.journal.exists():
        print(
            f"warning: no sweep store at {args.store} (no {settings.journal.name}): nothing has run there yet; "
            "check --store if it has",
            file=sys.stderr,
        )
    rows = point_status(study.get_trials(deepcopy=False) if study else [], plans, config.n_search)
    if args.json:
        print(json.dumps(rows))
        return 0

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

    plans, config, name = None, None, args.name or args.target
    if Path(args.target).is_file():
        config = load_config(args.target)
        plans = plan_trials(config, TRAIN_SIZES[config.dataset], args.target)
        name = args.name or config.name
    # Reading a sweep by name needs no grid: open_study(create=False) never looks at the config.
    settings = SweepSettings(config, "", name, args.store, storage=args.storage)  # type: ignore[arg-type]
    study = open_study(settings, create=False)
    if study is None:
        raise GansweepError(
            f"no sweep named {name!r} in {redact(args.storage or str(args.store))}: run it first, or check --store/--storage"
        )
    if args.out:
        if args.out.is_dir():
            raise GansweepError(f"--out {args.out} is a folder; give a file name, e.g. {args.out / 'report.md'}")
        _writable_folder(args.out.parent, "--out")
    rows = collect_rows(study.get_trials(deepcopy=False), plans)
    text = FORMATS[args.format](rows)
    if args.out:
        args.out.write_text(text)
        written = heatmaps(rows, args.out.parent)
        print(f"wrote {args.out} and {len(written)} heatmap(s) beside it", file=sys.stderr)
    else:
        print(text)
    return 0


def _dry_run(settings, plans, as_json: bool) -> int:

    study = open_study(settings, create=False)
    states = states_by_key(study.get_trials(deepcopy=False) if study else [])
    rows = [{**p.as_row(), "state": states.get(p.key, State.WAITING).value} for p in plans]
    complete = sum(r["state"] == State.COMPLETE.value for r in rows)
    if as_json:
        print(json.dumps(rows))
        return 0

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


def _ui(args: argparse.Namespace) -> int:
    uri = args.tracking_uri or default_tracking_uri(args.store)
    if not args.tracking_uri and not (args.store / "mlflow.db").exists():
        raise GansweepError(
            f"no MLflow store at {args.store}/mlflow.db: run `gansweep run grid.yaml` first, or pass --store"
        )
    check_tracking(uri)
    experiment = experiment_id(uri, args.name)
    page = f"#/experiments/{experiment}/runs?workflowType=machine_learning" if experiment else ""
    print(f"MLflow UI for {redact(uri)} at http://{args.host}:{args.port}/{page} (Ctrl-C to stop)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", args.host, "--port", str(args.port)]
    if not args.tracking_uri:
        command += ["--default-artifact-root", (args.store / "artifacts").resolve().as_uri()]
    # Its own process group: the server's workers go with it when gansweep ui is stopped, however.
    server = subprocess.Popen(command, start_new_session=True)
    try:
        with _on_sigterm(KeyboardInterrupt):
            return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(server)


@contextlib.contextmanager
def _on_sigterm(stop: type[KeyboardInterrupt]) -> Iterator[None]:
    """SIGTERM raises ``stop`` meanwhile: the command ends as after Ctrl-C, cleaning up, instead of dying."""

    def handler(signum: int, frame: object) -> None:
        raise stop

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(server: subprocess.Popen) -> None:
    """Ends the server and every process it started: SIGTERM to its group, SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _diagnose(args: argparse.Namespace) -> int:

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

    epochs = files.read_history(args.history)
    if args.samples:
        samples = files.read_samples(args.samples, [int(r["epoch"]) for r in epochs])
        digits = load_dataset(args.dataset, args.data_dir)
        judge = load_judge(digits)
        reference = Reference.of(judge, digits.heldout_images)
        by_epoch = {int(r["epoch"]): r for r in epochs}
        for epoch, images in samples.items():
            by_epoch[epoch].update(sample_metrics(judge, images, reference))
    return epochs


def _run_history(args: argparse.Namespace) -> list[dict]:
    if not args.tracking_uri and not (args.store / "mlflow.db").is_file():  # MLflow would create an empty one
        raise GansweepError(f"no MLflow store at {args.store}/mlflow.db: check --store (or pass --tracking-uri)")
    uri = args.tracking_uri or default_tracking_uri(args.store)
    with tempfile.TemporaryDirectory() as tmp:
        path = Tracker.download(uri, args.run_id, "history.json", Path(tmp))
        return json.loads(path.read_text())["epochs"]


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train,
    "run": _run,
    "list": _list,
    "status": _status,
    "report": _report,
    "diagnose": _diagnose,
    "ui": _ui,
}
