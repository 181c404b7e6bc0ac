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
from gansweep.diagnostics.metrics import Reference, distinct_words
from gansweep.errors import GansweepError
from gansweep.mlruns import holds_database, stored_run
from gansweep.options import DATA_DIR, DATASET, HYPERPARAMETERS, STORE
from gansweep.tracking import MissingArtifact, Tracker, check_tracking, resolve_run


def main(args: argparse.Namespace) -> int:

    if (args.run_id is None) == (args.history is None):
        raise GansweepError("give either a RUN_ID or --history H.csv")
    _check_flags(args)
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
        print(f"  {key}: {distinct_words(value) if key == 'distinct' else f'{value:.4g}'}")
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    """A flag that does not apply to what is diagnosed is refused, not taken and ignored."""

    def given(*flags: str) -> str:
        return " and ".join(f for f in flags if getattr(args, f[2:].replace("-", "_")) is not None)

    if args.run_id and (wrong := given("--samples", "--loss", "--dataset", "--data-dir")):
        raise GansweepError(f"{wrong} go with --history; a RUN_ID's samples, loss and data set are its own")
    if args.history and (wrong := given("--store", "--tracking-uri")):
        raise GansweepError(f"{wrong} name where a RUN_ID is; --history reads its file, and no store")
    if args.history and not args.samples and (wrong := given("--dataset", "--data-dir")):
        raise GansweepError(f"{wrong} go with --samples: they choose the judge and the held-out digits that score them")


def _file_history(args: argparse.Namespace) -> tuple[list[dict], str | None]:
    """The history file's records, with the metrics of the samples file when there is one, and the
    name of the judge that scored them (None: the metrics are the file's own)."""
    loss = LOSS if args.loss is None else args.loss
    dataset = DATASET if args.dataset is None else args.dataset
    if args.samples:
        check_judge(dataset)  # before the files' notes: a refusal is the one line
    epochs = files.read_history(args.history, loss)
    note = lambda text: print(f"note: {text}", file=sys.stderr)  # noqa: E731
    samples = files.read_samples(args.samples, [int(r["epoch"]) for r in epochs], note) if args.samples else {}
    if bounded := files.bound_d_fake(epochs, loss):
        where = "" if bounded == len(epochs) else f" in {bounded} of its {len(epochs)} rows (nan)"
        note(
            f"{args.history} gives no d_fake{where}: read {'there ' if where else ''}as its bound from the D loss, 1 - exp(-d_loss)"
        )
    if files.from_one(epochs, samples):
        last = int(epochs[-1]["epoch"])
        print(
            f"{args.history} counts epochs from 0: read its epochs 0-{last - 1} as 1-{last} (epochs trained)",
            file=sys.stderr,
        )
    if not samples:
        return epochs, None
    digits = load_dataset(dataset, DATA_DIR if args.data_dir is None else args.data_dir)
    judge = load_judge(digits, say=lambda line: print(line, file=sys.stderr))
    reference = Reference.of(judge, digits.heldout_images)
    by_epoch = {int(r["epoch"]): r for r in epochs}
    for epoch, images in samples.items():
        by_epoch[epoch].update(sample_metrics(judge, images, reference))
    return epochs, judge.name


def _run_history(args: argparse.Namespace) -> tuple[list[dict], str | None]:
    if args.tracking_uri:
        epochs, tags = _tracked_history(args.tracking_uri, args.run_id)
    else:
        epochs, tags = _stored_history(Path(STORE) if args.store is None else args.store, args.run_id)
    _check_judge(args.run_id, tags)
    return epochs, tags.get("gansweep.judge")


def _tracked_history(uri: str, run_id: str) -> tuple[list[dict], dict[str, str]]:
    check_tracking(uri, read_only=True)
    run_id = resolve_run(uri, run_id)  # the 8 characters report and status print
    with tempfile.TemporaryDirectory() as tmp:
        try:  # first: it says "no such run" or "no history" in one line
            path = Tracker.download(uri, run_id, "history.json", Path(tmp))
        except MissingArtifact as error:
            raise GansweepError(f"{error}: {TRIAL_RUN}") from None
        epochs = json.loads(path.read_text())["epochs"]
    return epochs, Tracker.run_tags(uri, run_id)


def _stored_history(store: Path, run_id: str) -> tuple[list[dict], dict[str, str]]:
    """From the default store, read only: a store copied from elsewhere is read where its files are now,
    without pointing its database at them (``mlruns.relocate``), which a refusal would leave behind."""
    database = store / "mlflow.db"
    if not holds_database(database):
        raise GansweepError(f"no MLflow store at {database}: check --store (or pass --tracking-uri)")
    found = stored_run(store, run_id)
    uri = f"sqlite:///{database.resolve()}"
    if found is None:
        raise GansweepError(f"no run {run_id!r} in {uri}: check the run id (gansweep report lists them)")
    tags, artifacts = found
    try:
        return json.loads((artifacts / "history.json").read_text())["epochs"], tags
    except FileNotFoundError:
        raise GansweepError(f"run {run_id} in {uri} holds no history.json: {TRIAL_RUN}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GansweepError(f"run {run_id} in {uri}: cannot read its history.json ({type(error).__name__})") from None


LOSS = next(h.default for h in HYPERPARAMETERS if h.name == "loss")
"""The adversarial loss of a history when --loss names none: a trial's default."""
TRIAL_RUN = "give a trial's run, not a sweep's (gansweep report lists them)"


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
