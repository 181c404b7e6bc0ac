"""gansweep: hyperparameter sweeps and experiment tracking for GANs.

The layers, each a module that only imports the ones above it in this list:
``models``/``losses``/``data`` -> ``hparams`` -> ``trainer`` -> ``artifacts``/``progress`` -> ``cli``.
"""

__version__ = "0.1.0"
