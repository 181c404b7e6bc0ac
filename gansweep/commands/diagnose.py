"""`gansweep diagnose`: the verdict and flags of a run in the store, or of a history file."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gansweep.data import load_dataset
from gansweep.diagnostics import diagnose, files, load_judge, sample_metrics
from gansweep.diagnostics.metrics import Reference
from gansweep.errors import GansweepError
from gansweep.tracking import MissingArtifact, Tracker, check_tracking, default_tracking_uri


def main(args: argparse.Namespace) -> int:

    if (args.run_id is None) == (args.history is None):
        raise GansweepError("give either a RUN_ID or --history H.csv")
    if args.run_id and (args.samples or args.loss != "bce"):  # the run's own samples and loss are known
        raise GansweepError("--samples and --loss go with --history; a RUN_ID's samples and loss are its own")
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

    epochs = files.read_history(args.history, args.loss)
    if args.samples:
        note = lambda text: print(f"note: {text}", file=sys.stderr)  # noqa: E731
        samples = files.read_samples(args.samples, [int(r["epoch"]) for r in epochs], note)
        digits = load_dataset(args.dataset, args.data_dir)
        judge = load_judge(digits)
        reference = Reference.of(judge, digits.heldout_images)
        by_epoch = {int(r["epoch"]): r for r in epochs}
        for epoch, images in samples.items():
            by_epoch[epoch].update(sample_metrics(judge, images, reference))
    return epochs


def _run_history(args: argparse.Namespace) -> list[dict]:
    if not args.tracking_uri and not (args.store / "mlflow.db").exists():  # MLflow would create an empty one
        raise GansweepError(f"no MLflow store at {args.store}/mlflow.db: check --store (or pass --tracking-uri)")
    uri = args.tracking_uri or default_tracking_uri(args.store)  # checks the store's mlflow.db
    check_tracking(uri, read_only=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Tracker.download(uri, args.run_id, "history.json", Path(tmp))
        except MissingArtifact as error:
            raise GansweepError(f"{error}: give a trial's run, not a sweep's (gansweep report lists them)") from None
        return json.loads(path.read_text())["epochs"]
