"""gansweep: hyperparameter sweeps and experiment tracking for GANs.

The package follows the product's boxes; a module imports only from its own layer and those below it
(``tests/test_layers.py``), bottom first:

- ``errors``, ``options`` (every user setting written once) -> ``models/`` (the zoo), ``losses``, ``data``
  -> ``hparams`` -> ``trainer`` (one trial; callbacks, no Optuna or MLflow)
- ``artifacts``, ``checkpoint``, ``diagnostics/`` (judge, metrics, ``flags.py`` where collapse is decided),
  ``progress``, ``tracking`` (MLflow), ``pictures``
- ``config`` (grid.yaml) -> ``sweep/`` (the Optuna study as work queue; ``_worker.run_trial`` is one
  trial's life) -> ``report`` -> ``commands`` -> ``cli``
"""

__version__ = "0.1.0"
