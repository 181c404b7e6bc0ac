"""Every example in the package's docstrings (``Example:`` blocks and other ``>>>`` lines) runs as written."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import gansweep

PACKAGE = Path(gansweep.__file__).parent
WITH_EXAMPLES = sorted(
    ".".join(("gansweep", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
    if ">>> " in path.read_text()
)


def test_the_examples_are_found() -> None:
    assert {
        "gansweep.diagnostics.flags",
        "gansweep.trainer",
        "gansweep.tables",
        "gansweep.sweep",
        "gansweep.errors",
    } <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
