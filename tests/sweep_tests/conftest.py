from __future__ import annotations

import os
import time
import uuid

import pytest


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
def sweep_name() -> str:
    """A fresh study/experiment name: the servers outlive a test."""
    return f"t-{uuid.uuid4().hex[:10]}"


def wait_for(condition, timeout: float = 180, every: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
