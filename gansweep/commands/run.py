"""`gansweep run`: a sweep's settings checked before any work, the sweep run, and its report."""

from __future__ import annotations

import argparse
import json
import numbers
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import optuna
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gansweep.commands._shared import on_sigterm, writable_folder
from gansweep.config import UNGROUPED, TrialPlan, load_config, plan_trials
from gansweep.data import TRAIN_SIZES, load_dataset
from gansweep.diagnostics.judge import check_judge
from gansweep.errors import EXIT_USAGE, GansweepError, redact
from gansweep.mlruns import missing_runs
from gansweep.options import (
    HEARTBEAT,
    MAX_GROUP,
    MAX_HEARTBEAT,
    MAX_WORKERS,
    RunOptions,
    name_problem,
    path_problem,
)
from gansweep.progress import SweepProgress
from gansweep.sending import unreachable
from gansweep.sweep import (
    State,
    SweepSettings,
    Terminated,
    check_recorded_judge,
    complete_search_trials,
    cores,
    open_study,
    records_by_key,
    run_sweep,
    states_by_key,
)
from gansweep.tables import heatmaps, study_rows, to_markdown
from gansweep.tracking import Tracker, check_tracking
from gansweep.trainer import device_problem, resolve_device
from gansweep.view import settings_of, varying


def main(args: argparse.Namespace) -> int:

    if args.json and not args.dry_run:
        raise GansweepError(
            "--json goes with --dry-run (the trials as a JSON list); a sweep's results as JSON: "
            "gansweep report GRID --format json"
        )
    settings = _sweep_settings(args)
    config = settings.config
    plans = plan_trials(config, TRAIN_SIZES[config.dataset], str(args.grid))
    if args.dry_run:
        check_devices(settings, "--devices" if args.devices is not None else f"{args.grid}: device", here=False)
        return _dry_run(settings, plans, args.json)

    preflight(settings, "--devices" if args.devices is not None else f"{args.grid}: device")
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
    options = RunOptions(**{f.name: getattr(args, f.name) for f in fields(RunOptions)})
    return sweep_settings(args.grid, options, args.set)


def sweep_settings(grid: Path, options: RunOptions, overrides: Sequence[str] = ()) -> SweepSettings:
    """`gansweep run`'s options, checked, as the sweep's settings (the Python API passes the same);
    ``overrides`` are `--set FIELD=VALUE`, which the sweep's recorded grid.yaml ends with."""
    config = load_config(grid, overrides)
    _check_options(options)
    if not config.models and options.group_size not in (None, "auto", 1):  # it was taken and ignored
        raise GansweepError(f"--group-size {options.group_size} groups nothing in {grid}: {UNGROUPED}")
    auto = options.workers == "auto" and options.devices is None
    if options.devices is not None:
        listed = [d.strip() for d in options.devices.split(",") if d.strip()]
        if not listed:
            raise GansweepError(f"--devices {options.devices!r} names no device: give e.g. cuda:0,cuda:1 or cpu")
        per_device = options.trials_per_device or 1
    else:
        listed, per_device = [config.device], 1 if auto else int(options.workers)
    # Counted, not built: the list of workers is made only once its size has passed both limits.
    on_cpu = per_device * sum(d == "cpu" or (d == "auto" and resolve_device().type == "cpu") for d in listed)
    if on_cpu > (available := cores()):
        raise GansweepError(
            f"{on_cpu} CPU workers with {available} CPU cores: at most {available} "
            f"(each worker is a process, more only share the cores); lower --workers or --trials-per-device"
        )
    if len(listed) * per_device > MAX_WORKERS:
        raise GansweepError(
            f"{len(listed) * per_device} workers ({len(listed)} device(s) x {per_device}): at most {MAX_WORKERS} "
            "processes on one machine (a worker takes ~1 GB of memory); lower --trials-per-device or --workers, "
            "or share the sweep between machines with --storage"
        )
    return SweepSettings(
        config=config,
        config_text=grid.read_bytes().decode("utf-8-sig")  # load_config read it as that
        + "".join(f"\n# gansweep run --set {text}" for text in overrides),
        study_name=options.name or config.name,
        store=Path(options.store),
        storage=options.storage,
        tracking_uri=options.tracking_uri,
        devices=tuple(d for d in listed for _ in range(per_device)),
        auto_workers=auto,
        heartbeat=options.heartbeat or HEARTBEAT,
        retry_failed=options.retry_failed,
        group_size=config.group_size if options.group_size is None else options.group_size,
    )


def _check_options(options: RunOptions) -> None:
    """Each option of the right type and size, whether it came from the command line or from Python."""
    for flag in ("name", "storage", "tracking_uri", "devices"):
        value = getattr(options, flag)
        if value is not None and not isinstance(value, str):
            raise GansweepError(f"--{flag.replace('_', '-')} must be text, got {value!r} ({type(value).__name__})")
    if not isinstance(options.store, (str, os.PathLike)) or not str(options.store):
        raise GansweepError(f"--store must be a folder's path, got {options.store!r}")
    if problem := path_problem(options.store):
        raise GansweepError(f"--store: {problem}")
    if options.name is not None and (problem := name_problem(options.name)):
        raise GansweepError(f"--name {problem}")
    sizes = (("workers", None), ("trials_per_device", None), ("heartbeat", MAX_HEARTBEAT), ("group_size", MAX_GROUP))
    for flag, high in sizes:
        value = getattr(options, flag)
        whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        automatic = flag in ("workers", "group_size")
        if (automatic and isinstance(value, str) and value == "auto") or (flag != "workers" and value is None):
            continue
        if not whole or value < 1 or (high is not None and value > high):
            allowed = f"a whole number from 1 to {high}" if high else "a whole number >= 1"
            allowed += " or auto" if automatic else ""
            raise GansweepError(f"--{flag.replace('_', '-')} must be {allowed}, got {value!r}")
    if not isinstance(options.retry_failed, bool):
        raise GansweepError(f"--retry-failed must be True or False, got {options.retry_failed!r}")
    _check_together(options)


def _check_together(options: RunOptions) -> None:
    """A flag that only means something beside another is refused without it, not taken and ignored."""
    if options.trials_per_device is not None and options.devices is None:
        raise GansweepError(
            "--trials-per-device needs --devices (it is workers per listed device, e.g. --devices cuda:0 "
            "--trials-per-device 4); without --devices, give --workers N"
        )
    if options.devices is not None and options.workers != "auto":
        raise GansweepError(
            f"--workers {options.workers} and --devices {options.devices!r}: give one; --devices starts one worker "
            "per listed device (times --trials-per-device)"
        )
    if options.heartbeat is not None and options.storage is None:
        raise GansweepError(
            f"--heartbeat {options.heartbeat} needs --storage: heartbeats tell the machines that share a sweep which "
            "trials' workers are alive; the default store admits one `gansweep run` at a time, which has none"
        )


def preflight(settings: SweepSettings, source: str) -> None:
    """All that must hold before a sweep writes anything, for `gansweep run` and ``gansweep.run`` alike:
    its devices exist, its data set and its judge are there, both stores answer and are whole, and the
    default store takes writes. ``source`` names where the devices came from, for the message."""
    check_devices(settings, source)
    load_dataset(settings.config.dataset, settings.config.data_dir)
    check_judge(settings.config.dataset)
    if settings.tracking_uri:
        check_tracking(settings.tracking_uri)
    study = open_study(settings, create=False)  # a damaged journal is refused here
    check_recorded_judge(settings, study)
    if not settings.tracking_uri and not settings.shared:  # a shared study's runs may be on other machines
        _check_runs_kept(settings, study)
    writable_store(settings)


def _check_runs_kept(settings: SweepSettings, study: optuna.Study | None) -> None:
    """The default store's mlflow.db is whole and holds the runs of the trials its journal says are done:
    one deleted or replaced would leave a sweep "complete" whose runs exist nowhere, and new runs written
    into a fresh mlflow.db would be lost to its restore. Read only: a refused store is left as it was."""
    records = records_by_key(study.get_trials(deepcopy=False) if study else []).values()
    done = [r.run_id for r in records if r.run_id and r.state.done]
    # a trial queued again resumes from its run's checkpoint: a fresh mlflow.db failed it ("Run ... not found")
    resumed = [r.checkpoint_run for r in records if r.checkpoint_run and not r.state.done]
    lost = missing_runs(settings.store, done + resumed)
    if lost:
        runs = ", ".join(r[:8] for r in lost[:3]) + (", ..." if len(lost) > 3 else "")
        where = (
            "mlflow.db is missing"
            if not (settings.store / "mlflow.db").exists()
            else f"mlflow.db lacks the runs of {len(lost)} of them"
        )
        journal = settings.journal.name
        finished = f"{len(done)} finished trial(s)" if done else ""
        waiting = (
            f"{len(resumed)} {'' if done else 'trial(s) '}to resume from their runs' checkpoints" if resumed else ""
        )
        recorded = " and ".join(part for part in (finished, waiting) if part)
        raise GansweepError(
            f"store {settings.store}: {journal} records {recorded}, but {where} (run {runs}); "
            f"nothing was changed: their results stay in {journal} (gansweep report and status read them) and "
            f"their files in {settings.store / 'artifacts'}. Restore mlflow.db from a backup, or move {journal} "
            "aside to train the sweep afresh"
        )


def check_devices(settings: SweepSettings, source: str, here: bool = True) -> None:
    """Every worker's device is one gansweep trains on, and exists on this machine where ``here`` (a dry
    run trains nothing: it may plan a GPU sweep on a machine without one)."""
    for device in dict.fromkeys(settings.devices):
        if problem := device_problem(device, here):
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
    """The markdown report of the store, also written (with heatmaps) to the sweep's parent run: when
    the tracking store does not answer, said and not written (the next `gansweep run` writes it)."""

    rows = study_rows(open_study(settings, create=False), plans)
    text = to_markdown(rows)
    try:
        tracker = Tracker(settings.mlflow_uri, settings.study_name, create=False)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "report.md").write_text(text)
            heatmaps(rows, folder)
            tracker.log_artifacts(parent_run, folder, "report")
        tracker.describe(parent_run, text)
    except Exception as error:  # the sweep's results are in; only the report's copy in MLflow is missing
        database = settings.store / "mlflow.db"
        gone = f"{database} is gone: deleted, or its disk unmounted" if not settings.tracking_uri else None
        reason = (gone if not database.is_file() else None) or unreachable(error)
        reason = reason or (f"{error.strerror}: {error.filename}" if isinstance(error, OSError) else None)
        if reason is None:
            raise
        print(
            f"warning: the report is not stored in the sweep's run {parent_run[:8]} ({redact(reason)}): "
            "the next gansweep run stores it; gansweep report prints it",
            file=sys.stderr,
        )
    return text


def _dry_run(settings, plans, as_json: bool) -> int:

    study = open_study(settings, create=False)
    states = states_by_key(study.get_trials(deepcopy=False) if study else [])
    rows = [{**p.as_row(), "state": states.get(p.key, State.WAITING).value} for p in plans]
    complete = sum(r["state"] == State.COMPLETE.value for r in rows)
    if as_json:
        print(json.dumps(rows))
        return 0

    # The settings that tell the trials apart, as the run names do: rows differing only in loss differ there.
    columns = varying(plans) or ["model"]
    one_lr = not {"lr_g", "lr_d"} & set(columns)
    shared = {k: v for k, v in settings_of(plans[0], one_lr).items() if k not in columns} if plans else {}
    reported = any(r["reported"] for r in rows)
    table = Table("#", *columns, "state", *(["reported"] if reported else []), title=escape(settings.study_name))
    for i, (plan, row) in enumerate(zip(plans, rows)):
        values = settings_of(plan, one_lr)
        words = [escape(row["reported"] or "")] if reported else []  # the grid's words, not rich's markup
        table.add_row(str(i), *(values[c] for c in columns), row["state"], *words)
    if shared:
        print("All trials: " + ", ".join(f"{k} {v}" for k, v in shared.items()))
    Console().print(table)
    print(f"{len(rows)} trials, {complete} already complete")
    search = settings.config.search
    if search is not None:
        done = 0 if study is None else complete_search_trials(study)
        print(
            f"plus search: {search.n_trials} trials of {search.model} sampled by {search.sampler}, {done} already complete"
        )
    return 0
