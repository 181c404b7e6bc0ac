"""A trial's checkpoint: what resuming it needs beyond the files a trial writes anyway.

``checkpoint.pt`` holds the weights, both optimisers' states, the RNG states and the epoch (and which
trial it belongs to: model, hyperparameters, seed). The history so far sits beside it as the trial's own
``history.json`` and ``samples.npy``, so a checkpoint does not carry every sample grid again. ``save``
writes all three, each through a temporary file, so a crash mid-write never leaves a torn one.

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

import pickle
from pathlib import Path
from typing import Any

import torch

from gansweep.artifacts import HISTORY_FILE, SAMPLES_FILE, read_history, write_history_json, write_samples
from gansweep.errors import GansweepError
from gansweep.trainer import History, Trainer, TrainerCallback

FORMAT = 2
"""1: the history and samples were inside checkpoint.pt (still read)."""
FILE = "checkpoint.pt"


class CheckpointError(GansweepError):
    """A checkpoint that cannot be read or belongs to another trial."""


def _identity(trainer: Trainer) -> tuple[str, dict[str, Any], int]:
    return trainer.spec.name, trainer.hp.as_params(), trainer.seed


def save(trainer: Trainer, folder: Path) -> list[Path]:
    """Writes checkpoint.pt, history.json and samples.npy into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = _save_state(trainer, folder)
    paths = [write_history_json(trainer.history, folder), write_samples(trainer.history, folder)]
    return [partial.replace(folder / FILE), *paths]  # checkpoint.pt last: never newer than its history


def save_state(trainer: Trainer, folder: Path) -> Path:
    """checkpoint.pt alone, for a folder that already holds the trial's history files."""
    return _save_state(trainer, folder).replace(folder / FILE)


def _save_state(trainer: Trainer, folder: Path) -> Path:
    rng = {"trainer": trainer.rng.get_state(), "torch": torch.get_rng_state()}
    if trainer.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(trainer.device)
    model, hyperparameters, seed = _identity(trainer)
    state = {
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
    }
    partial = folder / (FILE + ".partial")
    torch.save(state, partial)
    return partial


def load(trainer: Trainer, path: Path) -> None:
    """Restores a checkpoint of the same model, hyperparameters and seed (and the history beside it);
    ``trainer.fit`` then continues where it stopped, bit for bit on the CPU."""
    try:
        state = torch.load(path, map_location=trainer.device, weights_only=True)
    except pickle.UnpicklingError:  # torch's own message is a page on `weights_only`, not about the file
        raise CheckpointError(f"cannot read checkpoint {path}: damaged, or not a checkpoint") from None
    except Exception as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {str(error).splitlines()[0]}") from None
    found = (state.get("model"), state.get("hyperparameters"), state.get("seed"))
    if state.get("format") not in (1, FORMAT) or found != _identity(trainer):
        raise CheckpointError(f"checkpoint {path} is for {found}, not this trial {_identity(trainer)}")
    history = _history_v1(state["history"]) if state["format"] == 1 else _history_beside(path)
    trainer.generator.load_state_dict(state["generator"])
    trainer.discriminator.load_state_dict(state["discriminator"])
    trainer.opt_g.load_state_dict(state["opt_g"])
    trainer.opt_d.load_state_dict(state["opt_d"])
    try:
        trainer.rng.set_state(state["rng"]["trainer"].cpu())
    except RuntimeError:  # a CUDA generator's state is not a CPU one's
        raise CheckpointError(f"checkpoint {path} was saved on another kind of device than {trainer.device}") from None
    torch.set_rng_state(state["rng"]["torch"].cpu())  # dropout draws from the global generator
    if "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), trainer.device)
    trainer.epoch = state["epoch"]
    trainer.history = _to_epoch(history, state["epoch"], trainer.steps_per_epoch, path)


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


def _history_v1(saved: dict[str, Any]) -> History:
    return History(
        steps={k: v.tolist() for k, v in saved["steps"].items()},
        epochs=list(saved["epochs"]),
        samples=list(saved["samples"].cpu()),
    )


class EpochCheckpoint(TrainerCallback):
    """Saves into ``folder`` after every epoch but the last (whoever called ``fit`` saves that one, with
    the rest of the trial's files), so an interrupted trial resumes from its last whole epoch."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        if trainer.epoch < trainer.hp.epochs:
            save(trainer, self.folder)
