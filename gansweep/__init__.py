"""gansweep: hyperparameter sweeps and experiment tracking for GANs.

The package follows the product's boxes; each module imports only those listed before it:

- ``models/`` (the zoo), ``losses``, ``data`` -> ``hparams`` -> ``trainer`` (one trial; callbacks, no Optuna
  or MLflow)
- ``diagnostics/`` (judge, metrics, ``flags.py`` where collapse is decided), ``artifacts``, ``pictures``,
  ``progress``, ``tracking`` (MLflow)
- ``config`` (grid.yaml) -> ``sweep`` (Optuna study, workers) -> ``report`` -> ``cli``
"""

__version__ = "0.1.0"
