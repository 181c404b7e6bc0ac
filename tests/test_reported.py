"""Reading a report's words (``reported:``) into the verdict's vocabulary."""

from __future__ import annotations

import pytest

from gansweep.reported import read_reported


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ("Best", "good; no mode_collapse; no d_collapse"),
        ("Default, bad result", "bad"),
        ("Mode collapse, bad after 9 epochs", "bad; mode_collapse @ 9"),
        (
            "Quite good, but suddenly unstable at 17 ~ 27 epochs",
            "good; unstable @ 17-27; no mode_collapse; no d_collapse",
        ),
        ("Good; slightly unstable early, converges more slowly", "good; unstable; no mode_collapse; no d_collapse"),
        ("Stable, converge to low loss", "good; no unstable; no mode_collapse; no d_collapse"),
        ("Similar but more stable than default", "neither good nor bad"),  # compared with the default, not said
        ("D loss too low (paper's setting, per the author)", "bad; d_collapse"),
        ("Unstable, increasing generator loss", "neither good nor bad; unstable"),
    ],
)
def test_a_reported_phrase_reads_into_the_verdicts_vocabulary(text: str, wording: str) -> None:
    assert read_reported(text).wording == wording


def test_a_row_similar_to_default_says_what_the_default_row_says() -> None:
    """Report 000 §1: the default run's D loss was 0 from epoch 4; five rows have "similar loss curve to default"."""
    default = read_reported("Default, bad result [prose: D loss 0 from epoch 4, G loss 50]")
    assert default.wording == "bad; d_collapse @ 4"
    assert read_reported("Bad, similar loss curve to default", default).wording == "bad; d_collapse"
    mixed = read_reported("Bad, mode collapse, similar loss curve to default", default)
    assert mixed.flags == {"d_collapse": True, "mode_collapse": True}
    assert read_reported("Similar to default but faster", read_reported("Good")).outcome == "good"
    assert read_reported("Bad, similar loss curve to default").flags == {}  # no default row: nothing to share


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ("not bad", "neither good nor bad"),
        ("No mode collapse", "neither good nor bad; no mode_collapse"),
        (
            "no sign of mode collapse, but unstable at 17 ~ 27 epochs",
            "neither good nor bad; unstable @ 17-27; no mode_collapse",
        ),
        ("Not bad, then mode collapse, bad after 9 epochs", "bad; mode_collapse @ 9"),  # the comma ends the negation
        ("wasn't stable", "neither good nor bad; unstable"),
        ("never unstable, good", "good; no unstable; no mode_collapse; no d_collapse"),
        ("not good", "neither good nor bad"),
        ("Good, without D loss 0", "good; no d_collapse; no mode_collapse"),
    ],
)
def test_a_negation_denies_the_phrase_it_stands_before(text: str, wording: str) -> None:
    """ "not bad" read as bad and "no mode collapse" as a mode collapse: the agreement counts skewed."""
    assert read_reported(text).wording == wording


def test_a_negation_of_words_that_refer_to_the_default_refers_to_nothing() -> None:
    assert read_reported("not similar to default", read_reported("Default, bad result")).outcome is None
