"""A worker: claims queued trials one after another, trains them on one device, records them.

Each epoch checkpoint goes to the trial's MLflow run as ``checkpoint.pt`` (replaced every
``checkpoint_every`` epochs, finally by the last epoch's), so whichever worker, on whichever machine,
takes the trial over reads it from the tracking store.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gansweep.config import suggest_plan
from gansweep.errors import GansweepError, redact
from gansweep.sweep._optuna import trial_id
from gansweep.sweep._queue import (
    SLOT_ATTR,
    claim_waiting,
    plan_attrs,
    plan_of,
    requeue,
    running_trials,
    worker_id,
)
from gansweep.sweep._settings import SweepSettings
from gansweep.sweep._storage import Heartbeat, bookkeeping_lock, open_storage, open_study
from gansweep.trainer import Trainer, TrainerCallback

Event = tuple[str, dict[str, Any]]
"""(kind, payload) sent from a worker to the sweep: ``start``, ``step``, ``epoch``, ``end``,
``warning``, ``fatal``."""
INTERRUPTED = "interrupted"


class TrialTakenOver(Exception):
    """Another worker judged this one dead and took its trial; this worker's result is void."""


class DiskFull(GansweepError):
    """No space left where the stores write: every further trial would fail the same way."""


def objective_value(history, metric: str) -> float:
    """The final epoch's ``metric`` (default ``fid_mnist``). ``d_gap`` is |D(x) - D(G(z))|: 0 when D
    can no longer tell real from generated, 1 when D has won outright (report 000's collapse)."""
    last = history.epochs[-1]
    value = abs(last["d_real"] - last["d_fake"]) if metric == "d_gap" else last.get(metric, float("nan"))
    return value if value == value else float("inf")  # NaN: diverged, ranks last


def params_of(plan) -> dict[str, Any]:
    return {"model": plan.model, "dataset": plan.dataset, "seed": plan.seed, **plan.hp.as_params()}


class _SweepCallback(TrainerCallback):
    """Progress events, the epoch checkpoint in the trial's run, and a stop when the trial was taken over."""

    def __init__(self, worker: Worker, trial, plan, run_id: str, heartbeat: Heartbeat) -> None:
        self.worker, self.trial, self.plan, self.run_id, self.heartbeat = worker, trial, plan, run_id, heartbeat

    def on_start(self, trainer: Trainer) -> None:
        self.worker.emit(
            (
                "start",
                {
                    "key": self.plan.key,
                    "total": trainer.hp.epochs * trainer.steps_per_epoch,
                    "done": trainer.epoch * trainer.steps_per_epoch,
                    "label": self.plan.label,
                },
            )
        )

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None:
        self.worker.emit(("step", {"key": self.plan.key}))

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        if self.heartbeat.lost.is_set():
            raise TrialTakenOver()
        every = self.worker.settings.config.checkpoint_every
        if trainer.epoch % every == 0 and trainer.epoch < trainer.hp.epochs:  # the last one comes with the artifacts
            path = trainer.save_checkpoint(Path(self.worker.scratch.name) / self.run_id / "checkpoint.pt")
            self.worker.tracker.log_artifact(self.run_id, path)
            self.trial.set_user_attr("checkpoint_run", self.run_id)
        self.trial.set_user_attr("epoch", trainer.epoch)
        self.worker.emit(("epoch", {"key": self.plan.key, "record": record}))


@dataclass
class Worker:
    """Trains queued trials one after another on one device, keeping the data set in memory."""

    settings: SweepSettings
    device: str
    emit: Callable[[Event], None]
    number: int = 0
    parent_run: str = ""
    scratch: Any = field(default_factory=tempfile.TemporaryDirectory)
    storage: Any = None
    study: Any = None
    tracker: Any = None
    digits: Any = None
    judge: Any = None
    reference: Any = None

    def open(self) -> None:
        from gansweep.data import load_dataset
        from gansweep.diagnostics import load_judge
        from gansweep.diagnostics.metrics import Reference
        from gansweep.tracking import Tracker

        cfg = self.settings.config
        self.storage = open_storage(self.settings)
        self.study = open_study(self.settings, worker=self.number, storage=self.storage)
        self.tracker = Tracker(self.settings.mlflow_uri, self.settings.study_name, self.settings.artifact_root)
        self.digits = load_dataset(cfg.dataset, cfg.data_dir)
        self.judge = load_judge(self.digits)
        self.reference = Reference.of(self.judge, self.digits.heldout_images)

    def run_queue(self) -> None:
        """Trains queued trials until none is waiting and none is running anywhere: while another
        worker still trains, this one stays, to take the trial over if that worker dies."""
        from optuna.storages import fail_stale_trials

        if self.study is None:
            self.open()
        poll = min(5.0, self.settings.heartbeat)
        while True:
            # Under the sweep's lock: failing a stale trial and queueing its copy are two writes that
            # a starting `gansweep run` must not see halfway; SQLite has no row lock for the claim.
            with bookkeeping_lock(self.settings, self.storage):
                fail_stale_trials(self.study)  # RDB storage: queues again the trials of silent workers
                trial = claim_waiting(self.study, f"{worker_id(os.getpid())} {self.device}")
            if trial is not None:
                self.run(trial)
            elif not running_trials(self.study):
                return
            else:
                time.sleep(poll)

    def run(self, trial) -> None:
        """Trains one claimed trial and records the outcome in both stores."""
        plan = self._plan(trial)
        if plan is None:
            return
        run_id = self._start_run(trial, plan)
        try:
            with Heartbeat(self.storage, trial_id(trial), self.settings.heartbeat) as heartbeat:
                trainer, resumed_from = self._train(trial, plan, run_id, heartbeat)
                self._finish(trial, plan, run_id, trainer, resumed_from, heartbeat)
        except KeyboardInterrupt:
            if self._give_up(trial, {INTERRUPTED: True}):
                with bookkeeping_lock(self.settings, self.storage):
                    requeue(self.study, self.study.trials[trial.number])  # another worker may go on with it
            self.tracker.end_trial(run_id, "KILLED", {"gansweep.outcome": INTERRUPTED})
            self.emit(("end", {"key": plan.key, "state": "INTERRUPTED"}))
            raise
        except TrialTakenOver:
            self._taken_over(plan, run_id)
        except Exception as error:  # a failed trial is recorded; the worker goes on with the next point
            self._record_failure(trial, plan, run_id, error)
        finally:
            shutil.rmtree(Path(self.scratch.name) / run_id, ignore_errors=True)

    def _give_up(self, trial, attrs: dict[str, Any]) -> bool:
        """Records ``attrs`` and FAIL on a trial this worker holds; False when another worker has
        meanwhile taken it over (its state is no longer ours to write)."""
        import optuna
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        except (UpdateFinishedTrialError, ValueError):  # ValueError: Optuna's "Cannot tell a FAIL trial"
            return False
        return True

    def _taken_over(self, plan, run_id: str) -> None:
        self.tracker.end_trial(run_id, "KILLED", {"gansweep.outcome": "taken over by another worker"})
        self.emit(("end", {"key": plan.key, "state": "TAKEN OVER", "error": "another worker judged this one dead"}))

    def _record_failure(self, trial, plan, run_id: str, error: Exception) -> None:
        message = redact(f"{type(error).__name__}: {error}")
        if not self._give_up(trial, {"error": message[:2000]}):
            self._taken_over(plan, run_id)
            return
        self.tracker.end_trial(run_id, "FAILED", {"gansweep.error": message[:5000]})
        self.emit(("end", {"key": plan.key, "state": "FAIL", "error": message}))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise DiskFull(
                f"disk full while recording {plan.label} ({error.strerror}: {error.filename}); "
                "free some space, then run the same command with --retry-failed"
            ) from None

    def _plan(self, trial):
        """The grid point, or a freshly sampled search point (None, recorded as failed, if it is invalid)."""
        import optuna

        if trial.user_attrs.get(SLOT_ATTR) is None:
            plan = plan_of(trial)
            if plan.dataset == self.settings.config.dataset:
                return plan
            error = f"this point trains on {plan.dataset}; this worker's grid file loads {self.settings.config.dataset}"
        else:
            try:
                return suggest_plan(self.settings.config, trial, trial.user_attrs[SLOT_ATTR])
            except GansweepError as invalid:
                error = str(invalid)
        trial.set_user_attr("error", error)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.emit(("end", {"key": f"trial {trial.number}", "state": "FAIL", "error": error}))
        return None

    def _start_run(self, trial, plan) -> str:
        if trial.user_attrs.get("search"):  # a grid point was queued with these; a search point is known only now
            for key, value in plan_attrs(plan).items():
                trial.set_user_attr(key, value)
        tags = {
            "gansweep.model": plan.model,
            "gansweep.dataset": plan.dataset,
            "gansweep.key": plan.key,
            "gansweep.optuna_trial": str(trial.number),
            "gansweep.index": str(plan.index),
            "gansweep.worker": trial.user_attrs["worker"],
            **({"gansweep.reported": plan.reported} if plan.reported else {}),
        }
        run_id = self.tracker.start_trial(self.parent_run, plan.label, params_of(plan), tags)
        trial.set_user_attr("mlflow_run_id", run_id)
        return run_id

    def _train(self, trial, plan, run_id: str, heartbeat: Heartbeat) -> tuple[Trainer, int]:
        from gansweep.diagnostics import SampleEvaluator
        from gansweep.tracking import MlflowEpochLogger

        cfg = self.settings.config
        evaluator = SampleEvaluator(self.judge, self.reference, cfg.eval_every, cfg.eval_samples, tuple(cfg.early_stop))
        trainer = Trainer(
            plan.model,
            self.digits,
            plan.hp,
            seed=plan.seed,
            device=self.device,
            amp=cfg.amp,
            callbacks=[
                evaluator,
                MlflowEpochLogger(self.tracker, run_id),
                _SweepCallback(self, trial, plan, run_id, heartbeat),
            ],
        )
        resumed_from = self._resume(trainer, trial, plan)
        trainer.fit()
        return trainer, resumed_from

    def _resume(self, trainer: Trainer, trial, plan) -> int:
        """Continues from the newest epoch checkpoint of the trials this one replaces, if there is one
        (``checkpoint_run``); the run of the trial it replaces, left RUNNING by a dead worker, ends KILLED."""
        previous, source = trial.user_attrs.get("previous_run"), trial.user_attrs.get("checkpoint_run")
        if previous:
            self.tracker.end_trial(
                previous,
                "KILLED",
                {"gansweep.outcome": f"continued in run {trial.user_attrs['mlflow_run_id']}"},
                only_if_running=True,
            )
        if not source:
            return 0
        try:
            path = self.tracker.download(
                self.settings.mlflow_uri, source, "checkpoint.pt", Path(self.scratch.name) / source
            )
            trainer.load_checkpoint(path)
        except GansweepError as error:  # no checkpoint yet, or a corrupted one: start over
            self.emit(("warning", {"message": f"{plan.label} starts over: {error}"}))
            return 0
        return trainer.epoch

    def _finish(self, trial, plan, run_id: str, trainer: Trainer, resumed_from: int, heartbeat: Heartbeat) -> None:
        import optuna

        from gansweep.diagnostics import diagnose

        history = trainer.history
        diagnosis = diagnose(history.epochs)
        self._publish(plan, run_id, trainer, diagnosis)
        if heartbeat.lost.is_set() or self.storage.get_trial(trial_id(trial)).state.name != "RUNNING":
            raise TrialTakenOver()
        end_tags = {
            "gansweep.resumed_from_epoch": str(resumed_from),
            "gansweep.stopped": history.stopped or "",
            "gansweep.verdict": diagnosis.verdict,
            "gansweep.outcome": diagnosis.outcome,
            **{f"gansweep.flag.{f.name}": str(f.epoch) for f in diagnosis.flags},
            **{f"gansweep.recovered.{f.name}": str(f.end) for f in diagnosis.flags if f.end is not None},
        }
        self.tracker.end_trial(run_id, "FINISHED", end_tags)
        trial.set_user_attr("final", history.epochs[-1])
        trial.set_user_attr("verdict", diagnosis.verdict)
        trial.set_user_attr("flags", {f.name: f.epoch for f in diagnosis.flags})
        trial.set_user_attr("recovered", {f.name: f.end for f in diagnosis.flags if f.end is not None})
        trial.set_user_attr("outcome", diagnosis.outcome)
        trial.set_user_attr("resumed_from_epoch", resumed_from)
        if (history.stopped or "").startswith("early stop") and trial.user_attrs.get("search"):
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, objective_value(history, self.settings.config.objective.metric))
        self.emit(
            ("end", {"key": plan.key, "state": "COMPLETE", "final": history.epochs[-1], "verdict": diagnosis.verdict})
        )

    def _publish(self, plan, run_id: str, trainer: Trainer, diagnosis) -> None:
        """History, diagnosis, pictures, the resolved trial config and the final checkpoint, as artifacts."""
        from gansweep.artifacts import write_history
        from gansweep.pictures import generator_pictures, trial_pictures

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_history(trainer.history, folder)
            (folder / "diagnostics.json").write_text(json.dumps(diagnosis.to_dict(), indent=1))
            trial_pictures(trainer.history, diagnosis.flags, folder, self.settings.config.snapshot_every)
            generator_pictures(trainer, folder)
            config = {
                **params_of(plan),
                "key": plan.key,
                "reported": plan.reported,
                "device": str(trainer.device),
                "amp": trainer.amp,
            }
            (folder / "trial.json").write_text(json.dumps(config, indent=1))
            trainer.save_checkpoint(folder / "checkpoint.pt")
            self.tracker.log_artifacts(run_id, folder)


def _exit_with_parent() -> None:
    """A worker process ends as soon as its `gansweep run` does (even by SIGKILL): an orphan would
    train on while the next run queues its trial again."""
    import multiprocessing as mp
    import threading

    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def worker_process(settings: SweepSettings, number: int, threads: int, parent_run: str, events) -> None:
    """The body of a worker process: trains queued trials until the sweep has none left."""
    import torch

    _exit_with_parent()
    torch.set_num_threads(threads)
    worker = Worker(settings, settings.devices[number], events.put, number=number, parent_run=parent_run)
    try:
        worker.run_queue()
    except DiskFull as error:
        events.put(("fatal", {"message": str(error)}))
    except KeyboardInterrupt:
        pass
    except Exception as error:  # the store failed under this worker: its trial is queued again by the run
        events.put(("fatal", {"message": redact(f"worker {worker_id(os.getpid())}: {type(error).__name__}: {error}")}))
    finally:
        events.put(("exit", {"pid": os.getpid()}))
