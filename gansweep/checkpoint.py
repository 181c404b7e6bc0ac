"""A trial's checkpoint: what resuming it needs beyond the files a trial writes anyway.

``checkpoint.pt`` holds the weights, both optimisers' states, the RNG states and the epoch (and which
trial it belongs to: model, hyperparameters, seed). The history so far sits beside it as the trial's own
``history.json`` and ``samples.npy``, so a checkpoint does not carry every sample grid again. ``save``
writes all three, each through a temporary file, so a crash mid-write never leaves a torn one. A sweep
takes a ``snapshot`` at the epoch's end (a copy on the CPU) and writes it from its tracking thread while
the next epoch trains.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gansweep import checkpoint
    >>> from gansweep.data import load_dataset
    >>> from gansweep.hparams import resolve_hyperparameters
    >>> from gansweep.trainer import Trainer, TrainerCallback
    >>> class Pause(TrainerCallback):  # stops after one epoch, as a killed worker would
    ...     def on_epoch(self, trainer, record):
    ...         trainer.request_stop("paused")
    >>> digits = load_dataset("mnist-5k")
    >>> hp = resolve_hyperparameters("cs231n-mlp", {"epochs": 2, "batch_size": 500})
    >>> folder = tempfile.TemporaryDirectory()
    >>> saves = checkpoint.EpochCheckpoint(Path(folder.name))
    >>> _ = Trainer("cs231n-mlp", digits, hp, seed=0, callbacks=[saves, Pause()]).fit()
    >>> again = Trainer("cs231n-mlp", digits, hp, seed=0)
    >>> checkpoint.load(again, Path(folder.name) / checkpoint.FILE)
    >>> again.epoch, len(again.fit().epochs)
    (1, 2)
    >>> folder.cleanup()
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gansweep.artifacts import HISTORY_FILE, SAMPLES_FILE, read_history, write_history_json, write_samples
from gansweep.errors import GansweepError
from gansweep.streams import global_streams, set_global_streams
from gansweep.trainer import PRECISIONS, History, Trainer, TrainerCallback

FORMAT = 2
"""1: the history and samples were inside checkpoint.pt (still read)."""
FILE = "checkpoint.pt"
FIELDS: dict[str, type] = {
    "format": int,
    "model": str,
    "hyperparameters": dict,
    "seed": int,
    "epoch": int,
    "generator": dict,
    "discriminator": dict,
    "opt_g": dict,
    "opt_d": dict,
    "rng": dict,
}
"""What ``save`` writes, each of its type; format 1 had its history inside as well. A trial with ``amp``
also writes ``precision``, what its measurement chose, and ``precision_rates``, the measurement: the trial
resumes in it without measuring again, and its ``trial.json`` still says why."""


class CheckpointError(GansweepError):
    """A checkpoint that cannot be read or belongs to another trial."""


def _identity(trainer: Trainer) -> tuple[str, dict[str, Any], int]:
    return trainer.spec.name, trainer.hp.as_params(), trainer.seed


@dataclass(frozen=True)
class Snapshot:
    """A trial's checkpoint as of one epoch, copied off the trainer: nothing in it moves when training
    goes on, so it can be written later, from another thread."""

    state: dict[str, Any]
    """What checkpoint.pt holds, every tensor a copy on the CPU."""
    history: History

    def save(self, folder: Path) -> list[Path]:
        """Writes checkpoint.pt, history.json and samples.npy into ``folder``; returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        partial = _save_state(self.state, folder)
        paths = [write_history_json(self.history, folder), write_samples(self.history, folder)]
        return [partial.replace(folder / FILE), *paths]  # checkpoint.pt last: never newer than its history


def snapshot(trainer: Trainer) -> Snapshot:
    """The trainer's checkpoint now. On CUDA the copy waits for the epoch's queued work, as the epoch's
    own read of its losses already did."""
    history = trainer.history
    copied = History(
        steps={key: list(values) for key, values in history.steps.items()},
        epochs=[dict(record) for record in history.epochs],
        samples=list(history.samples),  # uint8 CPU tensors, never changed once appended
        stopped=history.stopped,
    )
    return Snapshot(_on_host(_state(trainer)), copied)


def _on_host(value: Any) -> Any:
    """``value`` with every tensor copied to the CPU (the optimisers' and networks' own are updated in place),
    each compact: a group member's tensors are views into its group's (some transposed), and a view is
    saved with its whole storage."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
    if isinstance(value, dict):
        copied = copy.copy(value)  # a state_dict's OrderedDict keeps its _metadata (layer versions)
        for key, item in value.items():
            copied[key] = _on_host(item)
        return copied
    if isinstance(value, (list, tuple)):
        return type(value)(_on_host(item) for item in value)
    return value  # numbers, strings, None: immutable


def save(trainer: Trainer, folder: Path) -> list[Path]:
    """Writes checkpoint.pt, history.json and samples.npy into ``folder``; returns their paths."""
    return snapshot(trainer).save(folder)


def save_state(trainer: Trainer, folder: Path) -> Path:
    """checkpoint.pt alone, for a folder that already holds the trial's history files."""
    return _save_state(_on_host(_state(trainer)), folder).replace(folder / FILE)


def _save_state(state: dict[str, Any], folder: Path) -> Path:
    partial = folder / (FILE + ".partial")
    torch.save(state, partial)
    return partial


def _state(trainer: Trainer) -> dict[str, Any]:
    rng = {"trainer": trainer.rng.get_state(), **trainer.streams}
    model, hyperparameters, seed = _identity(trainer)
    return {
        "format": FORMAT,
        "model": model,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "epoch": trainer.epoch,
        "generator": trainer.generator.state_dict(),
        "discriminator": trainer.discriminator.state_dict(),
        "opt_g": trainer.opt_g.state_dict(),
        "opt_d": trainer.opt_d.state_dict(),
        "rng": rng,
        **({"precision": trainer.precision} if trainer.amp and trainer.precision else {}),
        **({"precision_rates": dict(trainer.precision_rates)} if trainer.precision_rates else {}),
    }


def load(trainer: Trainer, path: Path) -> None:
    """Restores a checkpoint of the same model, hyperparameters and seed (and the history beside it);
    ``trainer.fit`` then continues where it stopped, bit for bit on the CPU.

    Raises ``CheckpointError`` for a file that is not a checkpoint ``save`` wrote (another object, a
    missing field, weights or optimiser states that do not fit the model), one of another trial, and
    one without its history; the trainer is then as it was."""
    state = _checked(_read(trainer, path), path)
    found = (state["model"], state["hyperparameters"], state["seed"])
    if found != _identity(trainer):
        raise CheckpointError(f"checkpoint {path} is for {found}, not this trial {_identity(trainer)}")
    history = _history_v1(state["history"], path) if state["format"] == 1 else _history_beside(path)
    history = _to_epoch(history, state["epoch"], trainer.steps_per_epoch, path)
    before = copy.deepcopy(_state(trainer))
    try:
        _restore(trainer, state, path)
    except CheckpointError:
        _restore(trainer, before, path)  # a sweep trains the trial from epoch 0 on this same trainer
        raise
    trainer.epoch = state["epoch"]
    trainer.history = history
    if trainer.amp and state.get("precision") in PRECISIONS:
        trainer.precision = state["precision"]
        trainer.precision_rates = dict(state.get("precision_rates", {}))


def _read(trainer: Trainer, path: Path) -> object:
    try:
        return torch.load(path, map_location=trainer.device, weights_only=True)
    except pickle.UnpicklingError:  # torch's own message is a page on `weights_only`, not about the file
        raise CheckpointError(f"cannot read checkpoint {path}: damaged, or not a checkpoint") from None
    except Exception as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {_reason(error)}") from None


def _checked(state: object, path: Path) -> dict[str, Any]:
    """``state`` if it holds every field of ``FIELDS`` with its type, in a format this version reads."""
    if not isinstance(state, dict):
        raise _not_a_checkpoint(path, f"a {type(state).__name__}")
    missing = [key for key in FIELDS if key not in state]
    if missing:
        raise _not_a_checkpoint(path, f"no {', '.join(map(repr, missing))}")
    for key, kind in FIELDS.items():
        if not isinstance(state[key], kind):
            raise _not_a_checkpoint(path, f"{key!r} of type {type(state[key]).__name__}, not {kind.__name__}")
    _check_values(state, path)
    return state


def _check_values(state: dict[str, Any], path: Path) -> None:
    if state["format"] not in (1, FORMAT):
        raise CheckpointError(
            f"cannot read checkpoint {path}: format {state['format']}, this gansweep reads formats 1 and {FORMAT} "
            "(a newer gansweep wrote it?)"
        )
    if state["format"] == 1 and not isinstance(state.get("history"), dict):
        raise _not_a_checkpoint(path, "format 1 without its 'history'")
    if state["epoch"] < 0:
        raise _not_a_checkpoint(path, f"its 'epoch' is {state['epoch']}")
    if state.get("precision", PRECISIONS[0]) not in PRECISIONS:
        raise _not_a_checkpoint(path, f"its 'precision' is {state['precision']!r}, not one of {', '.join(PRECISIONS)}")
    rates = state.get("precision_rates", {})
    if not isinstance(rates, dict) or not all(k in PRECISIONS and isinstance(v, float) for k, v in rates.items()):
        raise _not_a_checkpoint(path, f"its 'precision_rates' is {rates!r}, not images/s per precision")
    if not {"trainer", "torch"} <= state["rng"].keys():
        raise _not_a_checkpoint(path, "its 'rng' lacks the 'trainer' or 'torch' generator state")
    if not all(isinstance(s, torch.Tensor) and s.dtype == torch.uint8 for s in state["rng"].values()):
        raise _not_a_checkpoint(path, "its 'rng' holds something other than generator states")


def _not_a_checkpoint(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"cannot read checkpoint {path}: not a gansweep checkpoint ({what})")


def _restore(trainer: Trainer, state: dict[str, Any], path: Path) -> None:
    """Weights, optimiser states and RNG states, from ``state`` as ``_state`` makes it."""
    parts: dict[str, torch.nn.Module | torch.optim.Optimizer] = {
        "generator": trainer.generator,
        "discriminator": trainer.discriminator,
        "opt_g": trainer.opt_g,
        "opt_d": trainer.opt_d,
    }
    for name, part in parts.items():
        try:
            part.load_state_dict(state[name])
            if isinstance(part, torch.optim.Optimizer):
                _check_moments(part)
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise CheckpointError(
                f"cannot read checkpoint {path}: its {name} does not fit this model ({_reason(error)})"
            ) from None
    _restore_rng(trainer, state["rng"], path)


def _restore_rng(trainer: Trainer, rng: dict[str, torch.Tensor], path: Path) -> None:
    try:
        trainer.rng.set_state(rng["trainer"].cpu())
    except RuntimeError:  # a CUDA generator's state is not a CPU one's
        raise CheckpointError(f"checkpoint {path} was saved on another kind of device than {trainer.device}") from None
    streams: dict[str, torch.Tensor] = {key: rng[key].cpu() for key in ("torch", "cuda") if key in rng}
    saved = global_streams(trainer.device)
    try:  # set once to be checked now, not at the next epoch: dropout's streams are the trial's own
        set_global_streams(streams, trainer.device)
    except RuntimeError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: its rng does not fit ({_reason(error)})") from None
    finally:
        set_global_streams(saved, trainer.device)
    trainer.streams = streams


def _check_moments(optimizer: torch.optim.Optimizer) -> None:
    """Raises ``ValueError`` for a state that is not a tensor of its parameter's shape (the step count a
    scalar): torch's ``load_state_dict`` checks only the group sizes, and ``step`` would fail mid-epoch."""
    for param, moments in optimizer.state.items():
        if not isinstance(param, torch.Tensor):  # torch keeps a state it cannot match to a parameter as is
            raise ValueError("a state for a parameter none of its groups holds")
        for key, value in moments.items():
            shape = torch.Size() if key == "step" else param.shape
            if not isinstance(value, torch.Tensor) or value.shape != shape:
                raise ValueError(f"{key!r} is not a tensor of shape {tuple(shape)}")


def _reason(error: Exception) -> str:
    """The first line of ``error`` that says what is wrong: torch heads its list of state-dict errors with
    one that does not."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return lines[1] if lines[0].startswith("Error(s) in loading state_dict") and len(lines) > 1 else lines[0]


def _history_beside(path: Path) -> History:
    folder = path.parent
    missing = [name for name in (HISTORY_FILE, SAMPLES_FILE) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {path} needs {' and '.join(missing)} beside it (written with it)")
    try:
        return read_history(folder)
    except (OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"cannot read the history beside checkpoint {path}: {error}") from None


def _to_epoch(history: History, epoch: int, steps_per_epoch: int, path: Path) -> History:
    """The history as of the checkpoint's epoch: the files beside it may be one save newer (the upload
    was cut between them), never older."""
    if len(history.epochs) < epoch or len(history.samples) < epoch + 1:
        raise CheckpointError(f"the history beside checkpoint {path} stops before its epoch {epoch}")
    steps = {key: values[: epoch * steps_per_epoch] for key, values in history.steps.items()}
    return History(steps=steps, epochs=history.epochs[:epoch], samples=history.samples[: epoch + 1])


def _history_v1(saved: dict[str, Any], path: Path) -> History:
    try:
        return History(
            steps={k: v.tolist() for k, v in saved["steps"].items()},
            epochs=list(saved["epochs"]),
            samples=list(saved["samples"].cpu()),
        )
    except (KeyError, AttributeError, TypeError) as error:
        raise _not_a_checkpoint(path, f"its format-1 'history' does not read: {_reason(error)}") from None


class EpochCheckpoint(TrainerCallback):
    """Saves into ``folder`` after every epoch but the last (whoever called ``fit`` saves that one, with
    the rest of the trial's files), so an interrupted trial resumes from its last whole epoch."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        if trainer.epoch < trainer.hp.epochs:
            save(trainer, self.folder)
