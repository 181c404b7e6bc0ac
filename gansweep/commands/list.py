"""`gansweep list`: the model zoo, the data sets or the losses."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from gansweep.data import DATASETS
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
        rows = [{"name": name} for name in DATASETS]
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
