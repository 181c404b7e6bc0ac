"""`gansweep report`: tables of setting vs outcome (markdown, csv, json) and heatmaps, from the store."""

from __future__ import annotations

import argparse
import sys

from gansweep.commands._shared import grid_or_name, writable_folder
from gansweep.config import plan_trials
from gansweep.data import TRAIN_SIZES
from gansweep.errors import GansweepError, redact
from gansweep.options import name_problem
from gansweep.sweep import SweepSettings, open_study
from gansweep.tables import FORMATS, heatmaps, study_rows


def main(args: argparse.Namespace) -> int:

    if args.name is not None and (problem := name_problem(args.name)):
        raise GansweepError(f"--name {problem}")
    plans, name = None, args.name or args.target
    config = grid_or_name(args.target, args.set)
    if config is not None:
        plans = plan_trials(config, TRAIN_SIZES[config.dataset], args.target)
        name = args.name or config.name
    # Reading a sweep by name needs no grid: open_study(create=False) never looks at the config.
    settings = SweepSettings(config, "", name, args.store, storage=args.storage)  # type: ignore[arg-type]
    study = open_study(settings, create=False)
    if study is None:
        raise GansweepError(
            f"no sweep named {name!r} in {redact(args.storage or str(args.store))}: run it first, or check --store/--storage"
        )
    if args.out:
        if args.out.is_dir():
            raise GansweepError(f"--out {args.out} is a folder; give a file name, e.g. {args.out / 'report.md'}")
        writable_folder(args.out.parent, "--out")
    rows = study_rows(study, plans)
    text = FORMATS[args.format](rows)
    if args.out:
        args.out.write_text(text)
        written = heatmaps(rows, args.out.parent)
        print(f"wrote {args.out} and {len(written)} heatmap(s) beside it", file=sys.stderr)
    else:
        print(text)
    return 0
