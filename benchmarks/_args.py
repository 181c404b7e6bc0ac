"""What every benchmark's command line shares: the CLI's rule for bad input (one line naming the flag and
what it takes, exit 2, before any work) and the kinds of value their flags take.

The benchmarks are the project's own measuring instruments: a zero, a negative or a NaN once gave an "ok"
table of no rows, steps failed for want of time, a traceback, or half a minute of silence before one.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from gansweep.hparams import MAXIMA
from gansweep.options import path_problem

MOST_SECONDS = 86_400
"""The longest time limit a benchmark takes: a day, far past any measurement here (the GPU check fits one
ten-minute device call), and far below where a timeout overflows (``subprocess`` raised OverflowError)."""
MOST_REPEATS = 1000
"""The most repeats of a measurement: medians settle within a handful; a typo of 10^9 runs for years."""
EPOCHS = MAXIMA["epochs"]
"""The most epochs a benchmark's trial takes: a grid's own limit."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, ``error: argument --flag: what it takes, got X`` (argparse
    puts its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def whole(low: int, high: int, what: str = "") -> Callable[[str], int]:
    """A flag's type: a whole number from ``low`` to ``high`` (``what`` says why the ends)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high:,}{what}, got {text!r}")
        return value

    return parse


def seconds(text: str) -> float:
    """A flag's type: a time limit, more than 0 and at most ``MOST_SECONDS``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MOST_SECONDS):
        raise argparse.ArgumentTypeError(f"must be seconds, more than 0 and at most {MOST_SECONDS:,}, got {text!r}")
    return value


def device(text: str) -> str:
    """A flag's type: a device of this machine (``gansweep.trainer.device_problem``)."""
    from gansweep.trainer import device_problem  # torch: only when a device is given

    if problem := device_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def folder(text: str) -> Path:
    """A flag's type: a folder path this machine can hold (``options.path_problem``)."""
    if problem := path_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def results_file(text: str) -> Path:
    """A flag's type: a file the results can be written to, checked before the work that fills it."""
    path = folder(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name, e.g. {path / 'results.md'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot write into {path.parent} ({error.strerror})") from None
    return path
