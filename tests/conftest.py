from __future__ import annotations

import os
from pathlib import Path

import pytest

# The judge classifier is trained once and cached; keep the tests' copy inside the checkout.
os.environ.setdefault("GANSWEEP_CACHE", str(Path(__file__).resolve().parent.parent / ".cache"))

from gansweep.data import Digits, load_dataset


@pytest.fixture(scope="session")
def digits() -> Digits:
    return load_dataset("mnist-5k")
