"""A report's words for a row (``reported:``), read into the verdict's vocabulary: good or bad, and
which of ``READ_FLAGS`` they say happened, and when. The report compares them with what was measured
(``tables.comparisons``).

Example:
    >>> read_reported("Mode collapse, bad after 9 epochs").wording
    'bad; mode_collapse @ 9'
    >>> read_reported("not bad, no mode collapse").wording
    'neither good nor bad; no mode_collapse'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

READ_FLAGS = ("mode_collapse", "d_collapse", "unstable")
"""The flags a report's words name: the seed reports' tables speak of mode collapse and instability, and
report 000's prose of the default run's D loss at 0 (``d_collapse``), which "similar loss curve to
default" rows share."""
SAID = (
    (r"mode collapse", "mode_collapse", True),
    (r"\bd loss (?:0|too low)\b", "d_collapse", True),
    (r"(?<!more )\bstable\b", "unstable", False),  # "more stable than default" says how it compares, not how it ran
    (r"\bunstable\b", "unstable", True),  # after "stable": a row that says both was unstable at some point
)
"""(pattern in the lowered words, flag, whether the words say it happened), in order; a later match wins."""
WHEN = {
    "mode_collapse": r"bad after (\d+) epochs",
    "d_collapse": r"d loss 0 from epoch (\d+)",
    "unstable": r"unstable at (\d+) ?~ ?(\d+) epochs",
}
"""Where the words place a flag ("Mode collapse, bad after 9 epochs", "unstable at 17 ~ 27 epochs")."""
BAD_WORDS = r"\bbad\b|\btoo low\b"
GOOD_WORDS = r"\bgood\b|\bbest\b|^stable\b"
"""A row that opens with "Stable" is the report's pick of its table (report 000 §3: "Stable, converge to
low loss", chosen as the most stable)."""
AS_DEFAULT = r"similar (?:loss curve )?to default"
"""Words that refer to the table's default row (the row whose words start with "Default"): what that row's
words say, the referring row says too, where its own words are silent."""
NEGATION = r"\b(?:not|no|never|neither|nor|without|hardly|barely)\b|n['’]t\b"
"""Words that deny the phrase after them ("not bad", "no mode collapse", "wasn't stable"): read as they
were, "not bad" was bad and "no mode collapse" a mode collapse, skewing the agreement counts."""
NEGATION_REACH = 4
"""Words between a negation and the phrase it denies, within its clause ("no sign of mode collapse")."""
CLAUSE = r"[,.;:!?()/]|\b(?:but|though|although|then|while|and)\b"
"""Where a negation's reach ends: "not bad, mode collapse after 9 epochs" denies only "bad"."""


@dataclass(frozen=True)
class Reading:
    """A report's words for one row, read into the verdict's vocabulary (``read_reported``)."""

    outcome: str | None = None
    """good or bad; None where the words say neither."""
    flags: dict[str, bool] = field(default_factory=dict)
    """Flag name (``READ_FLAGS``) -> whether the words say it happened; a flag they leave open is absent."""
    when: dict[str, str] = field(default_factory=dict)
    """Flag name -> the epochs the words give it ("9", "17-27")."""

    @property
    def wording(self) -> str:
        """As the ``flag onsets`` column writes the measured flags: "bad; mode_collapse @ 9; no d_collapse"."""
        said = [
            name + (f" @ {self.when[name]}" if name in self.when else "") for name, yes in self.flags.items() if yes
        ]
        denied = [f"no {name}" for name, yes in self.flags.items() if not yes]
        return "; ".join([self.outcome or "neither good nor bad", *said, *denied])


def read_reported(text: str, default: Reading | None = None) -> Reading:
    """What ``text`` says, by the phrases of ``SAID``, ``WHEN``, ``BAD_WORDS`` and ``GOOD_WORDS``; ``default``
    is the reading of the table's default row, for words that refer to it (``AS_DEFAULT``). A bad result
    is one the words call bad or too low, or a collapse; a good one has no collapse at its end.

    "Quite good, but suddenly unstable at 17 ~ 27 epochs" reads as good with an unstable episode at epochs
    17-27 (report 000 says it recovered); "Similar to default but faster" as whatever the default row says."""
    lowered = " ".join(text.lower().split())
    flags: dict[str, bool] = {}
    for pattern, name, happened in SAID:
        if (said := _said(pattern, lowered)) is not None:
            flags[name] = happened if said else not happened
    when = {
        name: "-".join(m.groups())
        for name, pattern in WHEN.items()
        if flags.get(name) and (m := re.search(pattern, lowered))
    }
    collapsed = flags.get("mode_collapse") or flags.get("d_collapse")
    outcome = "bad" if collapsed or _said(BAD_WORDS, lowered) else "good" if _said(GOOD_WORDS, lowered) else None
    if default is not None and _said(AS_DEFAULT, lowered):
        flags = {**default.flags, **flags}
        outcome = outcome or default.outcome
    if outcome == "good":
        for name in ("mode_collapse", "d_collapse"):
            flags.setdefault(name, False)
    return Reading(outcome, flags, when)


def _said(pattern: str, lowered: str) -> bool | None:
    """True where the words say ``pattern`` somewhere, False where they only deny it ("no mode collapse":
    a ``NEGATION`` within ``NEGATION_REACH`` words before it, in its clause), None where they do not name it."""
    found = [m.start() for m in re.finditer(pattern, lowered)]
    if not found:
        return None
    return any(not _negated(lowered[:start]) for start in found)


def _negated(before: str) -> bool:
    clause = re.split(CLAUSE, before)[-1]
    return any(re.search(NEGATION, word) for word in clause.split()[-NEGATION_REACH - 1 :])
