"""`gansweep list`: the model zoo, the data sets (with the judge that scores each) or the losses."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from gansweep.data import DATASETS
from gansweep.diagnostics.judge import cached, read_judge, shipped, shipped_judge, shipped_name
from gansweep.errors import GansweepError
from gansweep.losses import LOSSES
from gansweep.models import MODELS


def main(args: argparse.Namespace) -> int:

    if args.what == "models":
        rows = [
            {
                "name": s.name,
                "image_size": s.image_size,
                "defaults": s.defaults,
                "summary": s.summary,
                "source": s.source,
            }
            for s in MODELS.values()
        ]
    elif args.what == "losses":
        rows = [{"name": loss.name, "summary": loss.description} for loss in LOSSES.values()]
    else:
        rows = [{"name": name, "judge": _judge(name)} for name in DATASETS]
    if args.json:
        print(json.dumps(rows))
        return 0
    table = Table(*[key for key in rows[0] if key != "source"])
    for row in rows:
        cells = [
            ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            for key, value in row.items()
            if key != "source"
        ]
        table.add_row(*cells)
    Console().print(table)
    return 0


def _judge(dataset: str) -> str:
    """Which judge scores a data set's samples: the shipped one, this machine's, or none yet."""
    try:
        if shipped(dataset) is not None:
            judge = shipped_judge(dataset)
        elif cached(dataset).is_file():
            judge = read_judge(cached(dataset), "cached", dataset)
        else:
            return "trained on first use, on the worker's device, then cached"
    except GansweepError as error:
        return f"{shipped_name(dataset) or 'none'}: {error}"
    return f"{judge.name} ({judge.source}, held-out accuracy {judge.accuracy:.1%})"
