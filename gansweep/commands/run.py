"""`gansweep run`: a sweep's settings checked before any work, the sweep run, and its report."""

from __future__ import annotations

import argparse
import json
import numbers
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gansweep.commands._shared import on_sigterm, writable_folder
from gansweep.config import TrialPlan, load_config, plan_trials
from gansweep.data import TRAIN_SIZES, load_dataset
from gansweep.errors import EXIT_USAGE, GansweepError, redact
from gansweep.options import RunOptions, name_problem
from gansweep.progress import SweepProgress
from gansweep.sweep import (
    State,
    SweepSettings,
    Terminated,
    complete_search_trials,
    cores,
    open_study,
    run_sweep,
    states_by_key,
)
from gansweep.tables import heatmaps, study_rows, to_markdown
from gansweep.tracking import Tracker, check_tracking
from gansweep.trainer import device_problem, resolve_device


def main(args: argparse.Namespace) -> int:

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
    with SweepProgress() as progress, on_sigterm(Terminated):
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


def _sweep_settings(args: argparse.Namespace) -> SweepSettings:
    return sweep_settings(args.grid, RunOptions(**{f.name: getattr(args, f.name) for f in fields(RunOptions)}))


def sweep_settings(grid: Path, options: RunOptions) -> SweepSettings:
    """`gansweep run`'s options, checked, as the sweep's settings (the Python API passes the same)."""
    config = load_config(grid)
    if options.name is not None and (problem := name_problem(options.name)):
        raise GansweepError(f"--name {problem}")
    auto = options.workers == "auto" and not options.devices
    for flag in ("workers", "trials_per_device", "heartbeat"):
        value = getattr(options, flag)
        whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not (flag == "workers" and value == "auto") and (not whole or value < 1):
            allowed = "a number >= 1 or auto" if flag == "workers" else ">= 1"
            raise GansweepError(f"--{flag.replace('_', '-')} must be {allowed}, got {value!r}")
    if options.devices:
        listed = [d.strip() for d in options.devices.split(",") if d.strip()]
        chosen = tuple(d for d in listed for _ in range(options.trials_per_device))
        if not chosen:
            raise GansweepError(f"--devices {options.devices!r} names no device: give e.g. cuda:0,cuda:1 or cpu")
    else:
        chosen = (config.device,) * (1 if auto else int(options.workers))
    on_cpu = [d for d in chosen if d == "cpu" or (d == "auto" and resolve_device().type == "cpu")]
    if len(on_cpu) > (available := cores()):
        raise GansweepError(
            f"{len(on_cpu)} CPU workers with {available} CPU cores: at most {available} "
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
        auto_workers=auto,
        heartbeat=options.heartbeat,
        retry_failed=options.retry_failed,
    )


def check_devices(settings: SweepSettings, source: str) -> None:
    """Every worker's device exists on this machine (not needed for a dry run, which trains nothing)."""
    for device in dict.fromkeys(settings.devices):
        if problem := device_problem(device):
            raise GansweepError(f"{source} {problem}")


def writable_store(settings: SweepSettings) -> None:
    """The default store's artifacts folder and MLflow database take writes (else the first trial would
    train, then fail to record anything)."""
    fix = "make it writable, or pass another --store"
    if settings.artifact_root is not None and settings.artifact_root.exists():
        writable_folder(settings.artifact_root, "store", fix)
    database = settings.store / "mlflow.db"
    if not settings.tracking_uri and database.exists() and not os.access(database, os.R_OK | os.W_OK):
        raise GansweepError(f"store {database}: the MLflow database is read-only; {fix}")


def sweep_report(settings: SweepSettings, plans: list[TrialPlan], parent_run: str) -> str:
    """The markdown report of the store, also written (with heatmaps) to the sweep's parent run."""

    tracker = Tracker(settings.mlflow_uri, settings.study_name, create=False)
    rows = study_rows(open_study(settings, create=False), plans)
    text = to_markdown(rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "report.md").write_text(text)
        heatmaps(rows, folder)
        tracker.log_artifacts(parent_run, folder, "report")
    tracker.describe(parent_run, text)
    return text


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
