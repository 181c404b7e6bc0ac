"""`gansweep diagnose`: the verdict and flags of a run in the store, or of a history file."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gansweep.data import load_dataset
from gansweep.diagnostics import diagnose, files, load_judge, sample_metrics
from gansweep.diagnostics.judge import check_judge, shipped_name
from gansweep.diagnostics.metrics import Reference
from gansweep.errors import GansweepError
from gansweep.tracking import MissingArtifact, Tracker, check_tracking, default_tracking_uri, holds_database


def main(args: argparse.Namespace) -> int:

    if (args.run_id is None) == (args.history is None):
        raise GansweepError("give either a RUN_ID or --history H.csv")
    if args.run_id and (args.samples or args.loss != "bce"):  # the run's own samples and loss are known
        raise GansweepError("--samples and --loss go with --history; a RUN_ID's samples and loss are its own")
    epochs, judge = _run_history(args) if args.run_id else _file_history(args)
    diagnosis = diagnose(epochs)
    if args.json:
        print(json.dumps(diagnosis.to_dict() | {"judge": judge}))
        return 0
    print(f"verdict: {diagnosis.verdict}")
    if judge:
        print(f"  scored by judge {judge}")
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


def _file_history(args: argparse.Namespace) -> tuple[list[dict], str | None]:
    """The history file's records, with the metrics of the samples file when there is one, and the
    name of the judge that scored them (None: the metrics are the file's own)."""
    if args.samples:
        check_judge(args.dataset)  # before the files' notes: a refusal is the one line
    epochs = files.read_history(args.history, args.loss)
    note = lambda text: print(f"note: {text}", file=sys.stderr)  # noqa: E731
    samples = files.read_samples(args.samples, [int(r["epoch"]) for r in epochs], note) if args.samples else {}
    if files.bound_d_fake(epochs, args.loss):
        note(f"{args.history} gives no d_fake: read as its bound from the D loss, 1 - exp(-d_loss)")
    if files.from_one(epochs, samples):
        last = int(epochs[-1]["epoch"])
        print(
            f"{args.history} counts epochs from 0: read its epochs 0-{last - 1} as 1-{last} (epochs trained)",
            file=sys.stderr,
        )
    if not samples:
        return epochs, None
    digits = load_dataset(args.dataset, args.data_dir)
    judge = load_judge(digits, say=lambda line: print(line, file=sys.stderr))
    reference = Reference.of(judge, digits.heldout_images)
    by_epoch = {int(r["epoch"]): r for r in epochs}
    for epoch, images in samples.items():
        by_epoch[epoch].update(sample_metrics(judge, images, reference))
    return epochs, judge.name


def _run_history(args: argparse.Namespace) -> tuple[list[dict], str | None]:
    if not args.tracking_uri and not holds_database(args.store / "mlflow.db"):
        raise GansweepError(f"no MLflow store at {args.store}/mlflow.db: check --store (or pass --tracking-uri)")
    uri = args.tracking_uri or default_tracking_uri(args.store)  # checks the store's mlflow.db
    check_tracking(uri, read_only=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:  # first: it says "no such run" or "no history" in one line
            path = Tracker.download(uri, args.run_id, "history.json", Path(tmp))
        except MissingArtifact as error:
            raise GansweepError(f"{error}: give a trial's run, not a sweep's (gansweep report lists them)") from None
        epochs = json.loads(path.read_text())["epochs"]
    tags = Tracker.run_tags(uri, args.run_id)
    _check_judge(args.run_id, tags)
    return epochs, tags.get("gansweep.judge")


def _check_judge(run_id: str, tags: dict[str, str]) -> None:
    """The run's metrics are the scores of the judge it was trained with; the flags' thresholds are
    calibrated on the judges that ship. A run scored by another judge of a data set that has one cannot
    be judged by them; a run that records no judge (older stores) is judged, with a warning."""
    name, dataset = tags.get("gansweep.judge"), tags.get("gansweep.dataset", "")
    ours = shipped_name(dataset)
    if name is None:
        print(
            f"warning: run {run_id} records no judge (trained before runs recorded their judge): judged by its recorded metrics",
            file=sys.stderr,
        )
    elif ours is not None and ours != name:
        raise GansweepError(
            f"run {run_id} was scored by judge {name}, and this gansweep's judge for {dataset} is {ours}: "
            "the flags are calibrated on the latter. Diagnose it with a gansweep whose shipped judge is the run's "
            "(gansweep list datasets names it)"
        )
