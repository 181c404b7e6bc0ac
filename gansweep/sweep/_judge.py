"""One judge per sweep: the judge that scores a sweep's first trial scores all of them.

Metrics from two judges cannot share a table (a Fréchet distance is defined by its feature network), so
the first worker of a sweep records its judge (``Judge.record``: name, sha256 of the weights, held-out
accuracy) in the study and on the sweep's parent run, with the judge's file as the run's artifact
``judge/``. Every later worker, on this machine or another, checks its own judge against that record
before it trains, and refuses in one line when they differ. A data set whose judge is trained on first
use (fashion-mnist) is fetched from that artifact instead, so that machines share the first one's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from gansweep.data import Digits
from gansweep.diagnostics.judge import (
    Judge,
    OtherDataset,
    cached,
    load_judge,
    read_judge,
    save_judge,
    shipped,
    shipped_name,
)
from gansweep.errors import GansweepError
from gansweep.sweep._settings import SweepSettings
from gansweep.sweep._storage import bookkeeping_lock
from gansweep.tracking import Tracker
from gansweep.trainer import resolve_device

JUDGE_ATTR = "gansweep_judge"
"""The study's user attribute holding the sweep's ``Judge.record``."""
ARTIFACT = "judge"
"""The parent run's artifact folder holding the sweep's judge file."""


def recorded_judge(study: optuna.Study) -> dict[str, Any] | None:
    """The sweep's judge record, or None (no trial scored yet, or a store from before judges were recorded)."""
    return study.user_attrs.get(JUDGE_ATTR)


def sweep_judge(
    settings: SweepSettings,
    study: optuna.Study,
    storage: Any,
    tracker: Tracker,
    parent_run: str,
    digits: Digits,
    device: str,
    say: Callable[[str], None],
) -> Judge:
    """The judge this worker scores with: the sweep's, or, for a sweep with none on record yet, this
    machine's (then recorded as the sweep's). ``GansweepError`` when this machine's judge is another."""
    record = recorded_judge(study)
    if record is not None and shipped(digits.name) is None and not _readable(cached(digits.name), digits.name):
        _fetch(tracker, parent_run, digits.name)
    judge = load_judge(digits, resolve_device(device), say)
    if record is None:
        with bookkeeping_lock(settings, storage):
            record = recorded_judge(study)  # another worker may have recorded it meanwhile
            if record is None:
                _record(study, tracker, parent_run, judge)
                record = judge.record
    if record["sha256"] != judge.sha256:
        raise _other(settings.study_name, record, judge.name, judge.source == "shipped")
    return judge


def check_recorded_judge(settings: SweepSettings, study: optuna.Study | None) -> None:
    """Before a sweep writes anything: a sweep of a data set whose judge ships was scored by that judge
    (which is never replaced). Data sets whose judge is trained are checked by each worker."""
    name = shipped_name(settings.config.dataset)
    record = recorded_judge(study) if study is not None else None
    if name is not None and record is not None and record["name"] != name:
        raise _other(settings.study_name, record, name, shipped=True)


def _other(sweep: str, record: dict[str, Any], name: str, shipped: bool) -> GansweepError:
    """A sweep scored by judge ``record`` met judge ``name``: why they cannot mix, and the ways out."""
    if shipped:  # never replaced: the sweep was scored by another release's judge, or by one trained for it
        return GansweepError(
            f"sweep {sweep!r} is scored by judge {record['name']}, not by {name}, the judge this gansweep ships: "
            "metrics of two judges cannot be compared. Finish it with a gansweep whose shipped judge is "
            f"{record['name']} (gansweep list datasets names it), or start a new sweep with --name"
        )
    return GansweepError(
        f"sweep {sweep!r} is scored by judge {record['name']}, and this machine's judge is {name}: metrics of two "
        "judges cannot be compared. Finish the sweep with the gansweep version and judge cache that started it, "
        "or start a new sweep with --name"
    )


def _readable(path: Path, dataset: str) -> bool:
    """Whether this machine's cache holds a judge of ``dataset`` (one of another, put there by hand, is
    for ``load_judge`` to refuse, not to be overwritten)."""
    try:
        read_judge(path, "cached", dataset)
    except OtherDataset:
        return True
    except GansweepError:  # missing or damaged
        return False
    return True


def _record(study: optuna.Study, tracker: Tracker, parent_run: str, judge: Judge) -> None:
    study.set_user_attr(JUDGE_ATTR, judge.record)
    if not parent_run:  # a worker opened outside `gansweep run` (tests, tools): no sweep run to tag
        return
    tags = {"gansweep.judge": judge.name, "gansweep.judge.sha256": judge.sha256}
    tracker.tag(parent_run, tags | {"gansweep.judge.accuracy": f"{judge.accuracy:.4f}"})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_judge(judge, folder / cached(judge.dataset).name)
        tracker.log_artifacts(parent_run, folder, ARTIFACT)


def _fetch(tracker: Tracker, parent_run: str, dataset: str) -> None:
    """The sweep's judge file into this machine's cache, if the parent run has one that reads."""
    name = cached(dataset).name
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = tracker.download(tracker.uri, parent_run, f"{ARTIFACT}/{name}", Path(tmp))
            read_judge(path, "cached", dataset)
        except GansweepError:  # none there (or damaged): this machine trains its own, and is refused if it differs
            return
        target = cached(dataset)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{name}.{os.getpid()}.partial")  # workers may fetch at once
        shutil.copyfile(path, partial)
        partial.replace(target)
