"""Diagnosis of a trial: the judge classifier, sample-quality metrics, and the flags and verdict.

Where is mode collapse decided? ``flags.py`` (``mode_collapse``), with every threshold and its reason.
"""

from gansweep.diagnostics.judge import Judge, load_judge
from gansweep.diagnostics.metrics import sample_metrics

__all__ = ["Judge", "load_judge", "sample_metrics"]
