"""How many queued trials of one shape a worker trains together as one group (``gansweep.group``).

``--group-size N`` (or the grid's ``group_size: N``) is N for every shape. ``auto`` measures each shape
once per worker, on its device (``group.choose_group_size``: throwaway members, a few steps each way), the
first time a point of that shape is next in the queue with at least one more of its shape waiting; the
answer holds for the rest of the sweep. A shape with a single point left is never measured: it trains alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import optuna
from optuna.trial import TrialState

from gansweep.data import Digits
from gansweep.group import choose_group_size
from gansweep.options import MAX_GROUP
from gansweep.sweep._queue import shape_of
from gansweep.sweep._record import TrialRecord
from gansweep.trainer import Trainer


class GroupSizes:
    """Per shape, how many trials of it one worker trains together."""

    def __init__(self, setting: int | Literal["auto"], device: str, digits: Digits, say: Callable[[str], None]) -> None:
        self.setting, self.device, self.digits, self.say = setting, device, digits, say
        self.measured: dict[tuple[Any, ...], int] = {}

    def size(self, record: TrialRecord) -> int:
        """For a claimed trial: how many of its shape to train with it (itself included)."""
        key = shape_of(record)
        if key is None:
            return 1
        return self.setting if isinstance(self.setting, int) else self.measured.get(key, 1)

    def measure_next(self, study: optuna.Study) -> None:
        """With ``auto``: measures the shape of the next queued point, if not yet measured and if another
        point of its shape waits too. Called outside the sweep's lock: it trains for a while."""
        if self.setting != "auto":
            return
        waiting = [TrialRecord.of(t) for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))]
        keys = [shape_of(record) for record in waiting]
        if not keys or keys[0] is None or keys[0] in self.measured or keys.count(keys[0]) < 2:
            return
        plan = waiting[0].plan
        assert plan is not None  # a grid point has one
        largest = min(MAX_GROUP, keys.count(keys[0]))
        size, rates = choose_group_size(
            lambda seed: Trainer(plan.model, self.digits, plan.hp, seed, self.device), largest
        )
        self.measured[keys[0]] = size
        measured = ", ".join(f"{n} {'alone' if n == 1 else 'fused'} {rate:.0f} img/s" for n, rate in rates.items())
        shown = f"{plan.model} batch {plan.hp.batch_size}" + (f" width {plan.hp.width}" if plan.hp.width else "")
        self.say(f"groups of {shown}: measured {measured}: trains {size} at a time")
