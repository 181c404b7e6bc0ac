"""What a finished trial tells Optuna (``_worker.objective_value``): Optuna's best is never a trial
judged bad, nor one whose samples the judge could not read."""

from __future__ import annotations

import math

import pytest

from gansweep.config import Objective
from gansweep.diagnostics import Diagnosis
from gansweep.diagnostics.flags import Flag
from gansweep.sweep._worker import objective_value
from gansweep.trainer import History

DIVERGED = Diagnosis([Flag("diverged", 1, "non-finite loss")], "diverged at epoch 1", {})
GOOD = Diagnosis([], "good", {})


def _history(**last: float) -> History:
    return History(epochs=[{"epoch": 1, "d_real": 0.9, "d_fake": 0.2, "readable": 1.0, **last}])


@pytest.mark.parametrize(
    ("history", "diagnosis", "objective", "value"),
    [
        (_history(fid_mnist=80.0), GOOD, Objective(), 80.0),
        (_history(fid_mnist=20.0), DIVERGED, Objective(), math.inf),  # a lower score, of noise
        (_history(fid_mnist=1376.34, readable=0.0), GOOD, Objective(), math.inf),  # the judge read nothing
        (_history(fid_mnist=math.nan), GOOD, Objective(), math.inf),
        (_history(mnist_score=9.0), DIVERGED, Objective(metric="mnist_score", direction="maximize"), -math.inf),
        (
            _history(mnist_score=1.0, readable=0.0),
            GOOD,
            Objective(metric="mnist_score", direction="maximize"),
            -math.inf,
        ),
        (_history(readable=0.0), GOOD, Objective(metric="d_gap"), pytest.approx(0.7)),  # needs no judge
    ],
)
def test_a_flagged_or_unreadable_trial_gets_the_worst_value(history, diagnosis, objective, value) -> None:
    assert objective_value(history, diagnosis, objective) == value
