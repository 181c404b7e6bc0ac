"""`gansweep status`: complete / running / failed / waiting per point, and which worker holds it."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gansweep.commands._shared import grid_or_name
from gansweep.config import plan_trials
from gansweep.data import TRAIN_SIZES
from gansweep.errors import GansweepError, redact
from gansweep.options import name_problem
from gansweep.sweep import State, SweepSettings, open_study, point_status, recorded_judge, stored_plans


def main(args: argparse.Namespace) -> int:

    if args.name is not None and (problem := name_problem(args.name)):
        raise GansweepError(f"--name {problem}")
    config = grid_or_name(args.target, args.set)
    name = args.name or (config.name if config is not None else args.target)
    # Reading a sweep by name needs no grid: open_study(create=False) never looks at the config.
    settings = SweepSettings(config, "", name, args.store, storage=args.storage)  # type: ignore[arg-type]
    study = open_study(settings, create=False)
    trials = study.get_trials(deepcopy=False) if study else []
    if config is not None:
        if study is None and not settings.shared and not settings.journal.exists():
            print(
                f"warning: no sweep store at {args.store} (no {settings.journal.name}): nothing has run there yet; "
                "check --store if it has",
                file=sys.stderr,
            )
        elif study is None and settings.shared:
            print(
                f"warning: no sweep named {name!r} in {redact(args.storage)}: nothing has run there yet; "
                "check --storage if it has",
                file=sys.stderr,
            )
        rows = point_status(trials, plan_trials(config, TRAIN_SIZES[config.dataset], args.target), config.n_search)
    elif study is None:
        raise GansweepError(
            f"no sweep named {name!r} in {redact(args.storage or str(args.store))}: run it first, "
            "or check --store/--storage (or give its grid.yaml)"
        )
    else:
        rows = point_status(trials, *stored_plans(trials))
    if args.json:
        print(json.dumps(rows))
        return 0

    table = Table("#", "point", "state", "worker", "epoch", "detail", "run", title=escape(settings.study_name))
    for i, row in enumerate(rows):
        epoch = f"{row['epoch']}/{row['epochs']}" if row["epochs"] else ""
        cells = (row["label"], row["state"], row["worker"], epoch, row["detail"][:80], row["run_id"][:8])
        table.add_row(str(i), *map(escape, cells))  # an error's words, not rich's markup
    Console().print(table)
    always = (State.COMPLETE, State.RUNNING, State.FAILED, State.WAITING)
    counts = {state: sum(r["state"] == state for r in rows) for state in (*always, State.PRUNED, State.INTERRUPTED)}
    print(", ".join(f"{n} {state.value}" for state, n in counts.items() if n or state in always))
    if study is not None and (judge := recorded_judge(study)):
        print(f"scored by judge {judge['name']} (held-out accuracy {judge['accuracy']:.1%}; sha256 {judge['sha256']})")
    return 0
