"""The ``Example:`` blocks of the diagnostics modules run as written."""

from __future__ import annotations

import doctest

import pytest

from gansweep.diagnostics import flags, metrics


@pytest.mark.parametrize("module", [flags, metrics], ids=lambda m: m.__name__)
def test_examples_run(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
