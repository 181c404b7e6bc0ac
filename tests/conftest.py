from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

# The judge classifier is trained once and cached; keep the tests' copy inside the checkout.
os.environ.setdefault("GANSWEEP_CACHE", str(Path(__file__).resolve().parent.parent / ".cache"))

from gansweep.data import Digits, load_dataset
from gansweep.sending import HURRIED
from gansweep.trainer import TrainerCallback


@pytest.fixture(autouse=True)
def _mlflow_http_settings():
    """A stopped sweep shortens MLflow's HTTP waits for the rest of its process (``sending.hurry``): a
    test that stops one in-process must not leave them short for the next."""
    kept = {name: os.environ.get(name) for name in HURRIED}
    yield
    for name, value in kept.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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


@pytest.fixture
def write_idx():
    """Writes small stand-ins for MNIST's four IDX files (random pixels, labels 0-9 in turn) into a folder."""

    def write(raw: Path, n_train: int, n_test: int) -> None:
        raw.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for prefix, n in (("train", n_train), ("t10k", n_test)):
            images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            labels = np.arange(n, dtype=np.uint8) % 10
            (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
            (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())

    return write


@pytest.fixture
def open_at():
    """A callback that opens ``gate`` once the trainer has finished epoch ``epoch`` (a slow store's tests)."""

    class OpenAt(TrainerCallback):
        def __init__(self, gate, epoch: int) -> None:
            self.gate, self.epoch = gate, epoch

        def on_epoch(self, trainer, record) -> None:
            if trainer.epoch == self.epoch:
                self.gate.set()

    return OpenAt
