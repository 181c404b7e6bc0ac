from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from gansweep.sweep import SweepSettings, open_study
from gansweep.sweep._storage import open_storage


@pytest.fixture
def sweep_name() -> str:
    """A fresh study/experiment name: the test servers outlive a test."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kill_worker(wait_for) -> Callable[[SweepSettings, Callable[[Any], tuple[int, Any]]], Any]:
    """``kill(settings, victim)``: kill -9 of the worker that ``victim(study)`` names as (pid, what) once it
    names one (pid 0: none yet); returns ``what``."""

    def kill(settings: SweepSettings, victim: Callable[[Any], tuple[int, Any]]) -> Any:
        found: list[tuple[int, Any]] = []
        storage = open_storage(settings, create=False)  # one for all polls: each RDB storage holds connections

        def named() -> bool:
            study = open_study(settings, create=False, storage=storage)
            found[:] = [victim(study)] if study is not None else []
            return bool(found and found[0][0])

        wait_for(named, every=0.2)
        pid, what = found[0]
        os.kill(pid, signal.SIGKILL)
        return what

    return kill
