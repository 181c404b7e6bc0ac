from __future__ import annotations

import pytest

from gansweep.data import Digits, load_dataset


@pytest.fixture(scope="session")
def digits() -> Digits:
    return load_dataset("mnist-5k")
