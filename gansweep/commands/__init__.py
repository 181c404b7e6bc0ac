"""What each `gansweep` command does, once ``cli`` has parsed its arguments: one module per command, each
with a ``main(args)`` returning the exit code. Errors a user can fix raise ``GansweepError``;
``cli.main`` prints them.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable


def handler(command: str) -> Callable[[argparse.Namespace], int]:
    """The command's ``main``, importing its module alone: `gansweep train` does not wait for the Optuna,
    MLflow, SQLAlchemy and matplotlib that `run` needs (0.6 s of its start, benchmarks/bench_process.py)."""
    return importlib.import_module(f"{__name__}.{command}").main
