"""Diagnosis of a trial: the judge classifier, sample-quality metrics, and the flags and verdict.

Where is mode collapse decided? ``flags.py`` (``mode_collapse``), with every threshold and its reason.
"""

from gansweep.diagnostics.evaluate import SampleEvaluator
from gansweep.diagnostics.flags import FLAG_NAMES, Diagnosis, Flag, diagnose, illegible
from gansweep.diagnostics.judge import Judge, load_judge
from gansweep.diagnostics.metrics import METRICS, sample_metrics, unreadable

__all__ = [
    "Diagnosis",
    "FLAG_NAMES",
    "Flag",
    "Judge",
    "METRICS",
    "SampleEvaluator",
    "diagnose",
    "illegible",
    "load_judge",
    "sample_metrics",
    "unreadable",
]
