"""gansweep: hyperparameter sweeps and experiment tracking for GANs.

The package follows the product's boxes; a module imports only from its own layer and those below it
(``tests/test_layers.py``), bottom first:

- ``errors``, ``options`` (every user setting written once) -> ``models/`` (the zoo), ``losses``, ``data``
  -> ``hparams`` -> ``trainer`` (one trial; callbacks, no Optuna or MLflow)
- ``artifacts``, ``checkpoint``, ``diagnostics/`` (judge, metrics, ``flags.py`` where collapse is decided),
  ``progress``, ``tracking`` (MLflow), ``pictures``
- ``config`` (grid.yaml) -> ``sweep/`` (the Optuna study as work queue; ``_worker.run_trials`` is each
  trial's life) -> ``tables`` (the report) -> ``commands`` -> ``api`` (``gansweep.run``, ``gansweep.report``), ``cli``
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Sweep", "report", "run"]


def __getattr__(name: str) -> Any:
    # gansweep.run and gansweep.report load the whole package (torch, Optuna, MLflow) on first use, not
    # on `import gansweep`: the command line imports this package too, and parses without them.
    if name in __all__:
        from gansweep import api

        return getattr(api, name)
    raise AttributeError(f"module 'gansweep' has no attribute {name!r}")
