"""The MLflow side of a sweep's trials: one run per trial, under the sweep's parent run.

``TrialRuns`` starts a trial's run (ending the run of the dead trial it replaces as KILLED), finds a
point's FINISHED run that the study lost, uploads its epoch checkpoints, fetches the newest one to resume from, publishes the finished trial's files and
ends its run FINISHED, FAILED or KILLED.

A checkpoint is three artifacts that replace the previous ones in the run: ``checkpoint.pt`` (weights,
optimisers, RNG states), and ``history.json`` and ``samples.npy``, the same files the finished trial
publishes. ``checkpoint_every`` (default 1) sets the cadence. Measured here at epoch 40 (save plus
upload into the default local store, 2 CPU cores): cs231n-mlp 8.9 MB + 3.2 MB of samples in 34 ms,
dcgan28 24 MB + 3.2 MB in 84 ms, dcgan64 95 MB + 17 MB in 0.39 s, against epochs of seconds
(mnist-5k) to minutes (mnist): at most a few per cent, so every epoch is the default. The samples grow
by 78 KB (28x28) or 410 KB (64x64) an epoch and are sent whole each time; the weights dominate. The save
and upload are made by the trial's tracking thread (``sending.Sender``) while the next epoch trains: the
loop itself pays only for the snapshot, a copy of the state on the CPU.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gansweep import checkpoint
from gansweep.artifacts import HISTORY_FILE, SAMPLES_FILE, write_history
from gansweep.config import TrialPlan
from gansweep.diagnostics import Diagnosis
from gansweep.errors import GansweepError
from gansweep.pictures import generator_pictures, trial_pictures
from gansweep.sweep._record import TrialRecord
from gansweep.sweep._signals import uninterrupted
from gansweep.tracking import Tracker
from gansweep.trainer import History, Trainer
from gansweep.view import run_name

STATE = "gansweep.state"
"""Why a run ended KILLED (interrupted, taken over): ``gansweep.outcome`` is only ever good, bad or unclear."""

WHOLE = (
    "trial.json",
    "diagnostics.json",
    "history.json",
    "samples.npy",
    "checkpoint.pt",
    "loss.png",
    "samples_strip.png",
)
"""Files every finished trial's run holds (``publish``): one that lacks any is not a result to adopt."""


@dataclass(frozen=True)
class Finished:
    """A point's FINISHED run already in the tracking store (the study may have lost its trial)."""

    run_id: str
    history: History
    """Its epochs and why it stopped (no samples)."""
    judge: str
    """The name of the judge that scored it ("" if not recorded)."""


@dataclass(frozen=True)
class Lost:
    """A point's FINISHED run that is no result to adopt: files of ``WHOLE`` lost, or its history unreadable."""

    run_id: str
    problem: str
    """What is wrong, as it follows "run ... trained it before, but"."""


def params_of(plan: TrialPlan) -> dict[str, Any]:
    """A trial's MLflow params: what it trains; ``lr`` too where lr_g and lr_d are one value, as the grid
    and the report name it (the UI's column for it)."""
    hp = plan.hp
    lr = {"lr": hp.lr_g} if hp.lr_g == hp.lr_d else {}
    return {"model": plan.model, "dataset": plan.dataset, "seed": plan.seed, **lr, **hp.as_params()}


class TrialRuns:
    """Starts, checkpoints, resumes, publishes and ends the MLflow runs of one worker's trials."""

    def __init__(
        self,
        tracker: Tracker,
        parent_run: str,
        snapshot_every: int,
        names: dict[str, str],
        judge: str,
        searched: tuple[str, ...] = (),
    ) -> None:
        self.tracker = tracker
        self.judge = judge
        """``Judge.name`` of the judge that scores the trials (tag ``gansweep.judge``)."""
        self.parent_run = parent_run
        self.snapshot_every = snapshot_every
        self.names = names
        """Point key -> its run's name (``view.run_names``)."""
        self.searched = list(searched)
        """The settings a search samples: a search trial's run is named by its values of them."""
        self.scratch = Path(tempfile.mkdtemp(prefix="gansweep-"))
        """Checkpoints on their way to the store, one folder per run."""

    def start(self, plan: TrialPlan, record: TrialRecord, group: str | None = None) -> str:
        """A new run for the trial; ``group`` names the Optuna trials it trains with as one fused model
        (tag ``gansweep.group``), None when it trains alone."""
        tags = {
            "gansweep.model": plan.model,
            "gansweep.dataset": plan.dataset,
            "gansweep.key": plan.key,
            "gansweep.optuna_trial": str(record.number),
            "gansweep.index": str(plan.index),
            "gansweep.worker": record.worker,
            "gansweep.judge": self.judge,
            **({"gansweep.reported": plan.reported} if plan.reported else {}),
            **({"gansweep.group": group} if group else {}),
        }
        name = self.names.get(plan.key) or run_name(plan, self.searched)
        return self.tracker.start_trial(self.parent_run, name, params_of(plan), tags)

    def replace(self, previous_run: str, run_id: str) -> None:
        """The run of the trial this one replaces ends KILLED, if a dead worker left it RUNNING."""
        self.end(previous_run, "KILLED", {STATE: "interrupted", "gansweep.continued_in": run_id}, only_if_running=True)

    def checkpoint(self, run_id: str, saved: checkpoint.Snapshot) -> None:
        """Writes and uploads an epoch's snapshot (from the trial's tracking thread): the history first
        and checkpoint.pt last, so that cut in between, the run keeps an older checkpoint beside a newer
        history, which ``checkpoint.load`` trims to it."""
        weights, *history = saved.save(self.scratch / run_id)
        for path in [*history, weights]:
            self.tracker.log_artifact(run_id, path)

    def resume(self, trainer: Trainer, source_run: str, run_id: str) -> int:
        """Loads the newest checkpoint of ``source_run`` (into run ``run_id``'s scratch folder); returns its
        epoch. Raises ``GansweepError`` when there is none yet or it cannot be read."""
        folder = self.scratch / run_id / "resume"
        path = self.tracker.fetch(source_run, checkpoint.FILE, folder)
        for name in (HISTORY_FILE, SAMPLES_FILE):
            try:
                self.tracker.fetch(source_run, name, folder)
            except GansweepError:  # a checkpoint of format 1 carries its history; load says if one is missing
                pass
        checkpoint.load(trainer, path)
        return trainer.epoch

    def finished(self, key: str) -> Finished | Lost | None:
        """A FINISHED run of point ``key`` already in the tracking store: the study may have lost its trial
        (a deleted journal, another ``--storage``). None when there is none, or its history cannot be read."""
        try:
            found = self.tracker.finished_trial(key)
            if found is None:
                return None
            run_id, tags = found
            held = self.tracker.artifact_names(run_id)
            if missing := [name for name in WHOLE if name not in held]:
                return Lost(run_id, f"the store has lost its {', '.join(missing)}")
            path = self.tracker.fetch(run_id, HISTORY_FILE, self.scratch / run_id / "adopt")
            try:
                saved = json.loads(path.read_text())
                history = History(epochs=saved["epochs"], stopped=saved["stopped"])
            except (ValueError, KeyError, TypeError) as error:
                return Lost(run_id, f"its {HISTORY_FILE} cannot be read ({type(error).__name__})")
            return Finished(run_id, history, tags.get("gansweep.judge", ""))
        except Exception:  # a store that fails here fails the training's bookkeeping too, recorded there
            return None

    def publish(self, run_id: str, plan: TrialPlan, trainer: Trainer, diagnosis: Diagnosis) -> None:
        """History, diagnosis, pictures, the resolved trial config and the final checkpoint, as artifacts."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_history(trainer.history, folder)
            (folder / "diagnostics.json").write_text(json.dumps(diagnosis.to_dict(), indent=1))
            trial_pictures(trainer.history, diagnosis.flags, folder, self.snapshot_every)
            generator_pictures(trainer, folder)
            config = {**params_of(plan), "key": plan.key, "reported": plan.reported}
            config |= {"device": str(trainer.device), "amp": trainer.amp, "precision": trainer.precision}
            config |= {"precision_rates": trainer.precision_rates}  # images/s each way, when amp measured them
            (folder / "trial.json").write_text(json.dumps(config, indent=1))
            checkpoint.save_state(trainer, folder)  # write_history wrote its history files above
            patience = self.tracker.patience  # Ctrl-C waits for a copy, not an outage
            guard = functools.partial(uninterrupted, unless=lambda: patience is not None and patience.troubled)
            self.tracker.log_artifacts(run_id, folder, guard=guard)

    def finish(self, run_id: str, history: History, diagnosis: Diagnosis, resumed_from: int) -> None:
        tags = {
            "gansweep.resumed_from_epoch": str(resumed_from),
            "gansweep.stopped": history.stopped or "",
            "gansweep.verdict": diagnosis.verdict,
            "gansweep.outcome": diagnosis.outcome,
            **{f"gansweep.flag.{f.name}": str(f.epoch) for f in diagnosis.flags},
            **{f"gansweep.recovered.{f.name}": str(f.end) for f in diagnosis.flags if f.end is not None},
        }
        self.end(run_id, "FINISHED", tags)

    def kill(self, run_id: str, state: str) -> None:
        self.end(run_id, "KILLED", {STATE: state})

    def fail(self, run_id: str, message: str) -> None:
        self.end(run_id, "FAILED", {"gansweep.error": message[:5000]})

    def end(self, run_id: str, status: str, tags: dict[str, str], only_if_running: bool = False) -> None:
        self.tracker.end_trial(run_id, status, tags, only_if_running=only_if_running)

    def forget(self, run_id: str) -> None:
        """Drops the run's scratch folder (its checkpoints are in the store)."""
        shutil.rmtree(self.scratch / run_id, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
