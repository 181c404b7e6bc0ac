"""Running a sweep: an Optuna study whose trials are the grid's points, each trained once.

Exactly-once is owned here, not left to a sampler (Optuna's GridSampler can hand one point to two
workers): this process enumerates the points, reads which keys already have a COMPLETE trial, and
hands every missing key to exactly one worker. A lock file keeps a second ``gansweep run`` off the
same sweep while one is running, so trials still RUNNING at start-up are known to be left over from
a run that died; they are marked failed (``interrupted``) and their points are trained again, from
the last epoch checkpoint when there is one.

Default storage lives in the store folder (``mlruns/``): ``optuna.journal`` (Optuna's JournalStorage,
which its docs recommend over SQLite for several processes on one machine) and ``checkpoints/``.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing as mp
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gansweep.config import SearchSlot, SweepConfig, TrialPlan, suggest_plan
from gansweep.errors import GansweepError
from gansweep.trainer import CheckpointError, Trainer, TrainerCallback

Event = tuple[str, dict[str, Any]]
"""(kind, payload) sent from a worker to the sweep: ``start``, ``step``, ``epoch``, ``end``."""
KEY_ATTR = "gansweep_key"
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class SweepSettings:
    """Where a sweep keeps its state, and how it spreads work. All fields are plain data so that
    worker processes can be started from them."""

    config: SweepConfig
    config_text: str
    study_name: str
    store: Path
    storage: str | None = None
    """An Optuna RDB URL; None = the journal file in ``store``."""
    tracking_uri: str | None = None
    """An MLflow tracking URI; None = SQLite in ``store``."""
    devices: tuple[str, ...] = ("auto",)
    """One worker per entry (``--devices``), or ``workers`` copies of the config's device."""

    @property
    def mlflow_uri(self) -> str:
        from gansweep.tracking import default_tracking_uri

        return self.tracking_uri or default_tracking_uri(self.store)

    def checkpoint_path(self, plan: TrialPlan) -> Path:
        return self.store / "checkpoints" / self.study_name / f"{plan.short_key}.pt"


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(settings: SweepSettings, create: bool = True):
    """The Optuna storage: the URL given, or the journal file under the store folder."""
    _quiet_optuna()
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if settings.storage:
        try:
            return optuna.storages.RDBStorage(settings.storage, engine_kwargs={"connect_args": _connect_args(settings.storage)})
        except ImportError:
            from gansweep.tracking import _redact

            raise GansweepError(
                f"--storage {_redact(settings.storage)}: its database driver is not installed "
                "(PostgreSQL: pip install psycopg2-binary; MySQL: pip install pymysql)"
            ) from None
        except Exception as error:
            from gansweep.tracking import _redact

            raise GansweepError(f"--storage {_redact(settings.storage)}: cannot open ({type(error).__name__}: {error})") from None
    path = settings.store / "optuna.journal"
    if not create and not path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 60} if url.startswith("sqlite") else {}


def _sampler(config: SweepConfig, worker: int):
    import optuna

    if config.search is None:
        return None
    seed = config.seed_list[0] * 1000 + worker  # parallel workers must not propose identical points
    if config.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def open_study(settings: SweepSettings, create: bool = True, worker: int = 0):
    import optuna

    storage = open_storage(settings, create)
    if storage is None:
        return None
    if not create:
        try:
            return optuna.load_study(study_name=settings.study_name, storage=storage)
        except KeyError:
            return None
    direction = settings.config.objective.direction
    study = optuna.create_study(
        study_name=settings.study_name, storage=storage, load_if_exists=True, direction=direction,
        sampler=_sampler(settings.config, worker),
    )  # fmt: skip
    if study.direction.name.lower() != direction:
        raise GansweepError(
            f"study {settings.study_name!r} was created to {study.direction.name.lower()}; "
            f"objective.direction {direction!r} needs another --name"
        )
    return study


def trial_states(study) -> dict[str, str]:
    """Key -> the best state any trial of that key reached (COMPLETE beats RUNNING beats FAIL)."""
    rank = {"COMPLETE": 3, "RUNNING": 2, "WAITING": 1, "PRUNED": 0, "FAIL": 0}
    states: dict[str, str] = {}
    if study is None:
        return states
    for trial in study.get_trials(deepcopy=False):
        key = trial.user_attrs.get(KEY_ATTR)
        if key is None:
            continue
        name = trial.state.name
        if rank[name] >= rank.get(states.get(key, "FAIL"), 0):
            states[key] = name
    return states


class SweepLock:
    """An exclusive lock on a sweep in this store, held for the whole `gansweep run`."""

    def __init__(self, store: Path, study_name: str) -> None:
        self.path = store / f"{study_name}.lock"
        try:
            store.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("a+")
        except OSError as error:
            raise GansweepError(f"store folder {store} is not writable ({error.strerror}); pass --store DIR") from None

    def __enter__(self) -> SweepLock:
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            owner = self.file.read().strip() or "another process"
            raise GansweepError(
                f"sweep {self.path.stem!r} is already running in this store ({owner}); wait for it or stop it first"
            ) from None
        self.file.truncate(0)
        self.file.write(f"pid {os.getpid()}")
        self.file.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.truncate(0)
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def mark_leftovers(study, tracker) -> int:
    """Marks trials and runs left RUNNING by a run that died as failed/killed; returns how many."""
    import optuna

    count = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        count += 1
    for run in tracker.trial_runs(status="RUNNING"):
        tracker.end_trial(run.info.run_id, "KILLED", {"gansweep.outcome": INTERRUPTED})
    return count


def objective_value(history, metric: str) -> float:
    """The final epoch's ``metric`` (default ``fid_mnist``). ``d_gap`` is |D(x) - D(G(z))|: 0 when D
    can no longer tell real from generated, 1 when D has won outright (report 000's collapse)."""
    last = history.epochs[-1]
    value = abs(last["d_real"] - last["d_fake"]) if metric == "d_gap" else last.get(metric, float("nan"))
    return value if value == value else float("inf")  # NaN: diverged, ranks last


class _EventCallback(TrainerCallback):
    def __init__(self, emit: Callable[[Event], None], key: str, settings: SweepSettings, plan: TrialPlan) -> None:
        self.emit, self.key, self.settings, self.plan = emit, key, settings, plan

    def on_start(self, trainer: Trainer) -> None:
        self.emit(("start", {"key": self.key, "total": trainer.hp.epochs * trainer.steps_per_epoch,
                             "done": trainer.epoch * trainer.steps_per_epoch, "label": _label(self.plan)}))

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None:
        self.emit(("step", {"key": self.key}))

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        if trainer.epoch % self.settings.config.checkpoint_every == 0 or trainer.epoch == trainer.hp.epochs:
            trainer.save_checkpoint(self.settings.checkpoint_path(self.plan))
        self.emit(("epoch", {"key": self.key, "record": record}))


def _params(plan: TrialPlan) -> dict[str, Any]:
    return {"model": plan.model, "dataset": plan.dataset, "seed": plan.seed, **plan.hp.as_params()}


def _label(plan: TrialPlan) -> str:
    hp = plan.hp
    lr = f"lr={hp.lr_g:g}" if hp.lr_g == hp.lr_d else f"lr_g={hp.lr_g:g} lr_d={hp.lr_d:g}"
    return f"{plan.model} {lr} bs={hp.batch_size} z={hp.latent_dim} seed={plan.seed}"


@dataclass
class Worker:
    """Runs trials one after another on one device, keeping the data set in memory between them."""

    settings: SweepSettings
    device: str
    emit: Callable[[Event], None]
    number: int = 0
    _study: Any = None
    _tracker: Any = None
    _digits: Any = None
    _judge: Any = None
    parent_run: str = ""

    def _open(self) -> None:
        from gansweep.data import load_dataset
        from gansweep.diagnostics import load_judge
        from gansweep.tracking import Tracker

        cfg = self.settings.config
        self._study = open_study(self.settings, worker=self.number)
        self._tracker = Tracker(self.settings.mlflow_uri, self.settings.study_name, self.settings.store / "artifacts")
        self._digits = load_dataset(cfg.dataset, cfg.data_dir)
        self._judge = load_judge(self._digits)

    def run(self, task: TrialPlan | SearchSlot) -> None:
        """Claims an Optuna trial for ``task``, trains it, and records the outcome in both stores."""
        import optuna

        if self._study is None:
            self._open()
        trial = self._study.ask()
        plan = self._plan(trial, task)
        if plan is None:
            return
        run_id = self._start_run(trial, plan)
        try:
            trainer, resumed_from = self._train(plan, run_id)
            self._finish(trial, task, plan, run_id, trainer, resumed_from)
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED, True)
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._tracker.end_trial(run_id, "KILLED", {"gansweep.outcome": INTERRUPTED})
            self.emit(("end", {"key": plan.key, "state": "INTERRUPTED"}))
            raise
        except Exception as error:  # a failed trial is recorded; the sweep goes on
            message = f"{type(error).__name__}: {error}"
            trial.set_user_attr("error", message[:2000])
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self._tracker.end_trial(run_id, "FAILED", {"gansweep.error": message[:5000]})
            self.emit(("end", {"key": plan.key, "state": "FAIL", "error": message}))

    def _plan(self, trial, task: TrialPlan | SearchSlot) -> TrialPlan | None:
        """The grid point, or a freshly sampled search point (None, recorded as failed, if it is invalid)."""
        import optuna

        if isinstance(task, TrialPlan):
            return task
        trial.set_user_attr("search", True)
        try:
            return suggest_plan(self.settings.config, trial, task.number)
        except GansweepError as error:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self.emit(("end", {"key": f"search #{task.number}", "state": "FAIL", "error": str(error)}))
            return None

    def _start_run(self, trial, plan: TrialPlan) -> str:
        for key, value in ((KEY_ATTR, plan.key), ("model", plan.model), ("hyperparameters", plan.hp.as_params()),
                           ("seed", plan.seed), ("reported", plan.reported)):  # fmt: skip
            if value is not None:
                trial.set_user_attr(key, value)
        tags = {
            "gansweep.model": plan.model, "gansweep.dataset": plan.dataset, "gansweep.key": plan.key,
            "gansweep.optuna_trial": str(trial.number), "gansweep.index": str(plan.index),
            **({"gansweep.reported": plan.reported} if plan.reported else {}),
        }  # fmt: skip
        run_id = self._tracker.start_trial(self.parent_run, _label(plan), _params(plan), tags)
        trial.set_user_attr("mlflow_run_id", run_id)
        return run_id

    def _train(self, plan: TrialPlan, run_id: str) -> tuple[Trainer, int]:
        from gansweep.diagnostics import SampleEvaluator
        from gansweep.tracking import MlflowEpochLogger

        cfg = self.settings.config
        evaluator = SampleEvaluator(self._judge, self._digits.heldout_images, cfg.eval_every, cfg.eval_samples, tuple(cfg.early_stop))
        trainer = Trainer(
            plan.model, self._digits, plan.hp, seed=plan.seed, device=self.device, amp=cfg.amp,
            callbacks=[evaluator, MlflowEpochLogger(self._tracker, run_id), _EventCallback(self.emit, plan.key, self.settings, plan)],
        )  # fmt: skip
        resumed_from = self._resume(trainer, plan)
        trainer.fit()
        return trainer, resumed_from

    def _finish(self, trial, task, plan: TrialPlan, run_id: str, trainer: Trainer, resumed_from: int) -> None:
        import optuna

        from gansweep.diagnostics import diagnose

        history = trainer.history
        diagnosis = diagnose(history.epochs)
        self._publish(plan, run_id, trainer, diagnosis)
        end_tags = {
            "gansweep.resumed_from_epoch": str(resumed_from), "gansweep.stopped": history.stopped or "",
            "gansweep.verdict": diagnosis.verdict, **{f"gansweep.flag.{f.name}": str(f.epoch) for f in diagnosis.flags},
        }  # fmt: skip
        self._tracker.end_trial(run_id, "FINISHED", end_tags)
        trial.set_user_attr("final", history.epochs[-1])
        trial.set_user_attr("verdict", diagnosis.verdict)
        trial.set_user_attr("flags", {f.name: f.epoch for f in diagnosis.flags})
        if (history.stopped or "").startswith("early stop") and isinstance(task, SearchSlot):
            self._study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self._study.tell(trial, objective_value(history, self.settings.config.objective.metric))
        self.settings.checkpoint_path(plan).unlink(missing_ok=True)
        self.emit(("end", {"key": plan.key, "state": "COMPLETE", "final": history.epochs[-1], "verdict": diagnosis.verdict}))

    def _publish(self, plan: TrialPlan, run_id: str, trainer: Trainer, diagnosis) -> None:
        """History, diagnosis, pictures, the resolved trial config and the final checkpoint, as artifacts."""
        from gansweep.artifacts import write_history
        from gansweep.pictures import generator_pictures, trial_pictures

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_history(trainer.history, folder)
            (folder / "diagnostics.json").write_text(json.dumps(diagnosis.to_dict(), indent=1))
            trial_pictures(trainer.history, diagnosis.flags, folder, self.settings.config.snapshot_every)
            generator_pictures(trainer, folder)
            config = {**_params(plan), "key": plan.key, "reported": plan.reported, "device": str(trainer.device), "amp": trainer.amp}
            (folder / "trial.json").write_text(json.dumps(config, indent=1))
            trainer.save_checkpoint(folder / "checkpoint.pt")
            self._tracker.log_artifacts(run_id, folder)

    def _resume(self, trainer: Trainer, plan: TrialPlan) -> int:
        path = self.settings.checkpoint_path(plan)
        if not path.exists():
            return 0
        try:
            trainer.load_checkpoint(path)
        except CheckpointError as error:
            self.emit(("warning", {"message": f"ignoring checkpoint for {_label(plan)}: {error}"}))
            return 0
        return trainer.epoch


def _worker_process(settings: SweepSettings, number: int, threads: int, parent_run: str, tasks, events) -> None:
    import torch

    torch.set_num_threads(threads)
    worker = Worker(settings, settings.devices[number], events.put, number=number, parent_run=parent_run)
    try:
        while (plan := tasks.get()) is not None:
            worker.run(plan)
    except KeyboardInterrupt:
        pass
    finally:
        events.put(("exit", {}))


@dataclass
class SweepResult:
    plans: list[TrialPlan]
    """The grid's plans, then the completed search trials."""
    states: dict[str, str]
    """Key -> Optuna state, read back from the store after the run."""
    parent_run: str = ""
    trained: int = 0
    interrupted: bool = False


def run_sweep(settings: SweepSettings, plans: list[TrialPlan], on_event: Callable[[Event], None]) -> SweepResult:
    """Trains every plan that has no COMPLETE trial yet; ``on_event`` sees workers' progress."""
    from gansweep.tracking import Tracker

    with SweepLock(settings.store, settings.study_name):
        study = open_study(settings)
        tracker = Tracker(settings.mlflow_uri, settings.study_name, settings.store / "artifacts")
        leftovers = mark_leftovers(study, tracker)
        if leftovers:
            on_event(("warning", {"message": f"{leftovers} trial(s) left running by an earlier run marked interrupted; retrying them"}))
        done = {k for k, s in trial_states(study).items() if s == "COMPLETE"}
        todo: list[TrialPlan | SearchSlot] = [p for p in plans if p.key not in done]
        searched = complete_search_trials(study)
        if settings.config.search is not None:
            todo += [SearchSlot(i) for i in range(searched, settings.config.search.n_trials)]
        parent_run = tracker.sweep_run(settings.study_name, settings.config_text)
        result = SweepResult(plans, {}, parent_run=parent_run)
        total = len(plans) + (settings.config.search.n_trials if settings.config.search else 0)
        on_event(("sweep", {"total": total, "done": total - len(todo)}))

        def record(event: Event) -> None:
            kind, payload = event
            if kind == "end":
                result.trained += payload["state"] == "COMPLETE"
            on_event(event)

        try:
            _dispatch(settings, todo, parent_run, record)
        except KeyboardInterrupt:
            result.interrupted = True
        result.states = trial_states(study)
        result.plans = plans + _search_plans(study, settings.config, len(plans))
        complete = all(result.states.get(p.key) == "COMPLETE" for p in result.plans)
        if settings.config.search is not None:
            complete = complete and complete_search_trials(study) >= settings.config.search.n_trials
        tracker.finish_sweep(parent_run, "FINISHED" if complete else ("KILLED" if result.interrupted else "FAILED"))
        return result


def _search_plans(study, config: SweepConfig, first_index: int) -> list[TrialPlan]:
    """The completed ``search:`` trials as plans, in trial order (for the results table)."""
    from gansweep.hparams import Hyperparameters

    trials = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("search") and t.state.name == "COMPLETE"]
    return [
        TrialPlan(t.user_attrs["model"], Hyperparameters.from_params(t.user_attrs["hyperparameters"]),
                  t.user_attrs["seed"], config.dataset, None, first_index + i)  # fmt: skip
        for i, t in enumerate(trials)
    ]


def complete_search_trials(study) -> int:
    return sum(t.state.name == "COMPLETE" and t.user_attrs.get("search", False) for t in study.get_trials(deepcopy=False))


def _dispatch(settings: SweepSettings, todo: list[TrialPlan | SearchSlot], parent_run: str, record: Callable[[Event], None]) -> None:
    devices = settings.devices
    if len(devices) == 1 or len(todo) <= 1:
        worker = Worker(settings, devices[0], record, parent_run=parent_run)
        for plan in todo:
            worker.run(plan)
        return
    context = mp.get_context("spawn")
    tasks, events = context.Queue(), context.Queue()
    for plan in todo:
        tasks.put(plan)
    n = min(len(devices), len(todo))
    threads = max(1, (os.cpu_count() or 1) // n)
    for _ in range(n):
        tasks.put(None)
    procs = [
        context.Process(target=_worker_process, args=(settings, i, threads, parent_run, tasks, events), daemon=True)
        for i in range(n)
    ]
    for proc in procs:
        proc.start()
    running = n
    try:
        while running:
            kind, payload = events.get()
            if kind == "exit":
                running -= 1
            else:
                record((kind, payload))
    except KeyboardInterrupt:
        for proc in procs:
            proc.join(timeout=60)  # workers mark their trial interrupted, then leave
        while not events.empty():
            kind, payload = events.get()
            if kind == "end":
                record((kind, payload))
        raise
    finally:
        for proc in procs:
            proc.join(timeout=5)
