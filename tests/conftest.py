from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# The judge classifier is trained once and cached; keep the tests' copy inside the checkout.
os.environ.setdefault("GANSWEEP_CACHE", str(Path(__file__).resolve().parent.parent / ".cache"))

from gansweep.data import Digits, load_dataset


@pytest.fixture(scope="session")
def digits() -> Digits:
    return load_dataset("mnist-5k")


def _service(variable: str) -> str:
    """A server started by scripts/services.sh; CI (GANSWEEP_REQUIRE_SERVICES=1) fails without it."""
    value = os.environ.get(variable)
    if not value:
        if os.environ.get("GANSWEEP_REQUIRE_SERVICES"):
            pytest.fail(f"${variable} is not set: scripts/services.sh did not start the test servers")
        pytest.skip(f"${variable} is not set: run `bash scripts/services.sh` and source .cache/services/env")
    return value


@pytest.fixture
def postgres_url() -> str:
    """Optuna storage on the loopback PostgreSQL server."""
    return _service("GANSWEEP_TEST_POSTGRES")


@pytest.fixture
def mlflow_server() -> str:
    """Tracking URI of the loopback MLflow server (its backend store on PostgreSQL)."""
    return _service("GANSWEEP_TEST_MLFLOW")


@pytest.fixture
def wait_for():
    """Polls ``condition`` until it holds; fails the test after ``timeout`` seconds."""

    def wait(condition, timeout: float = 180, every: float = 0.3) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(every)

    return wait
