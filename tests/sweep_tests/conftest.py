from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def sweep_name() -> str:
    """A fresh study/experiment name: the test servers outlive a test."""
    return f"t-{uuid.uuid4().hex[:10]}"
