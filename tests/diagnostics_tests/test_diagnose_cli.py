from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gansweep.cli import main
from gansweep.diagnostics import files


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_history_only_json(tmp_path: Path, capsys) -> None:
    rows = ["epoch,d_loss,g_loss,d_real,d_fake", "1,1.1,1.5,0.6,0.35", "2,0.6,3.0,0.8,0.12", "3,0.2,6.0,0.9,0.06"]
    rows += [f"{e},0.0,{45 + e % 5},1.0,0.0" for e in range(4, 41)]
    assert main(["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows)), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "D-loss collapse at epoch 4"
    assert result["flags"][0]["name"] == "d_collapse" and result["flags"][0]["epoch"] == 4
    assert result["metrics"] == {}


def test_a_history_without_d_fake_reads_its_d_loss_collapse_from_the_bound(tmp_path: Path, capsys) -> None:
    """Report 000's own words, "D loss 0 from epoch 4, G loss 50", as a notebook logs them (no D(G(z))):
    it read "good". BCE's D loss bounds D(G(z)) by 1 - exp(-d_loss), which the rule reads."""
    rows = ["epoch,d_loss,g_loss", "1,1.1,1.5", "2,0.6,3.0", "3,0.2,6.0"] + [f"{e},0.0,50" for e in range(4, 21)]
    assert main(["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows)), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["verdict"] == "D-loss collapse at epoch 4" and "gives no d_fake" in err
    healthy = ["epoch,d_loss,g_loss"] + [f"{e},{1.2 + e % 3 / 20},{0.9 + e % 2 / 10}" for e in range(1, 21)]
    assert main(["diagnose", "--history", str(_csv(tmp_path / "g.csv", healthy)), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "good"
    assert not files.bound_d_fake(files.read_history(tmp_path / "h.csv", "lsgan"), "lsgan")  # no such bound


def _repeated_digit(digits, seed: int) -> np.ndarray:
    one = digits.heldout_images[0].numpy().astype(np.float32) / 127.5 - 1
    noise = np.random.default_rng(seed).normal(0, 0.06, (300, 1, 28, 28))
    return np.clip(one[None] + noise, -1, 1).astype(np.float32)


def test_samples_of_one_epoch_are_too_early_to_tell(tmp_path: Path, digits, capsys) -> None:
    rows = ["epoch,d_loss,g_loss"] + [f"{e},1.1,1.2" for e in range(1, 6)]
    np.save(tmp_path / "s.npy", _repeated_digit(digits, 0))
    code = main(
        ["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows)), "--samples", str(tmp_path / "s.npy"), "--json"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in result["flags"]] == ["too_early"] and result["metrics"]["modes_covered"] == 1
    assert result["verdict"] == "too early to tell at epoch 5" and result["outcome"] == "unclear"


def test_samples_by_epoch_show_a_stuck_collapse(tmp_path: Path, digits, capsys) -> None:
    """One repeated digit at every epoch 1-12 of an .npz: no more varied for 11 epochs, a mode collapse."""
    rows = ["epoch,d_loss,g_loss"] + [f"{e},1.1,1.2" for e in range(1, 13)]
    np.savez(tmp_path / "s.npz", **{f"epoch_{e}": _repeated_digit(digits, e) for e in range(1, 13)})
    code = main(
        ["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows)), "--samples", str(tmp_path / "s.npz"), "--json"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [(f["name"], f["end"]) for f in result["flags"]] == [("mode_collapse", None)]
    assert [e["epoch"] for e in result["evaluations"]] == list(range(1, 13))
    assert {e["trend"] for e in result["evaluations"][1:]} == {"flat"} and result["outcome"] == "bad"
    assert main(["diagnose", "--history", str(tmp_path / "h.csv"), "--samples", str(tmp_path / "s.npz")]) == 0
    text = capsys.readouterr().out
    assert (
        text.startswith("verdict: mode collapse from epoch 1 (1/10 digits)")
        and "evaluations: 1 collapsed, 2 collapsed flat" in text
    )


@pytest.mark.parametrize(
    ("rows", "samples", "message"),
    [
        (["epoch,d_loss"], None, "missing column 'g_loss'; needs epoch, d_loss, g_loss"),
        (["epoch,d_loss,g_loss", "1,nan,nan", "2,nan,nan"], None, "every d_loss and g_loss is NaN"),
        (["epoch,d_loss,g_loss", "1,0.5,abc"], None, "h.csv:2: not a number"),
        (["epoch,d_loss,g_loss"], None, "no rows after the header"),
        (["epoch,d_loss,g_loss", "1,1,1"], np.zeros((20, 3, 28, 28), np.float32), "expected shape (N, 1, 28, 28)"),
        (["epoch,d_loss,g_loss", "1,1,1"], np.full((20, 28, 28), 5, np.float32), "values must lie in [-1, 1]"),
        (
            ["epoch,d_loss,g_loss", "1,1,1"],
            np.full((20, 28, 28), 300, np.int64),
            "integer samples must be 0-255 pixels",
        ),
        (["epoch,d_loss,g_loss", "1,1,1"], np.zeros((20, 28, 28), bool), "expected numbers (floats in [-1, 1]"),
        (
            ["epoch,d_loss,g_loss", "1,1,1"],
            {"7": np.zeros((20, 28, 28), np.float32)},
            "array '7' names no epoch of the history",
        ),
        (
            ["epoch,d_loss,g_loss", "1,1,1"],
            {"last": np.zeros((20, 28, 28), np.float32)},
            "name each array by its epoch",
        ),
        (["epoch,d_loss,g_loss", "1,1,1"], {"1": np.zeros((5, 28, 28), np.float32)}, "s.npz[1]: expected shape"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path: Path, capsys, rows, samples, message: str) -> None:
    argv = ["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows))]
    if isinstance(samples, dict):
        np.savez(tmp_path / "s.npz", **samples)
        argv += ["--samples", str(tmp_path / "s.npz")]
    elif samples is not None:
        np.save(tmp_path / "s.npy", samples)
        argv += ["--samples", str(tmp_path / "s.npy")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_diagnose_needs_a_run_or_a_history(capsys) -> None:
    assert main(["diagnose"]) == 2
    assert "give either a RUN_ID or --history" in capsys.readouterr().err


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


HEADER = b"epoch,d_loss,g_loss\n"
MODES_HEADER = b"epoch,d_loss,g_loss,modes_covered\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEADER + b"1,1,1\n2,0.5,caf\xe9\n", "h.csv: not UTF-8 text (byte 0xe9 on line 3); save it as UTF-8 CSV"),
        ("epoch,d_loss,g_loss\n1,1,1\n".encode("utf-16"), "h.csv: not UTF-8 text (byte 0xff on line 1)"),
        (bytes(range(256)), "h.csv: not UTF-8 text (byte 0x80 on line 2)"),
        (HEADER + b"1,1,1\nnan,1,1\n", "h.csv:3: epoch must be a whole number from 0 to 1,000,000,000, got nan"),
        (HEADER + b"inf,1,1\n", "h.csv:2: epoch must be a whole number from 0 to 1,000,000,000, got inf"),
        (HEADER + b"-1,1,1\n", "h.csv:2: epoch must be a whole number from 0 to 1,000,000,000, got -1.0"),
        (HEADER + b"0,1,1\n0,1,1\n", "h.csv:3: epoch 0 comes after epoch 0; epochs must increase strictly"),
        (HEADER + b"1.5,1,1\n", "h.csv:2: epoch must be a whole number from 0 to 1,000,000,000, got 1.5"),
        (HEADER + b"1e300,1,1\n", "h.csv:2: epoch must be a whole number from 0 to 1,000,000,000, got 1e+300"),
        (HEADER + b"1,1,1\n1,1,1\n", "h.csv:3: epoch 1 comes after epoch 1; epochs must increase strictly"),
        (HEADER + b"2,1,1\n3,1,1\n1,1,1\n", "h.csv:4: epoch 1 comes after epoch 3"),
        (HEADER + b"1,,1\n", "h.csv:2: empty d_loss; every row needs epoch, d_loss, g_loss (nan for a loss not"),
        (HEADER + b"1,1,1\n2,1\n", "h.csv:3: 2 cells under a header of 3 columns (epoch, d_loss, g_loss)"),
        (HEADER + b",1,1\n", "h.csv:2: empty epoch; every row needs"),
        (HEADER + b"1,1," + b"9" * 200_000 + b"\n", "h.csv:2: not a CSV history (field larger than field limit"),
        (MODES_HEADER + b"1,1,1,inf\n", "h.csv:2: modes_covered must be a whole number from 0 to 10"),
        (MODES_HEADER + b"1,1,1,3.5\n", "h.csv:2: modes_covered must be a whole number"),
        (HEADER + b"1,1,1e999x\n", "h.csv:2: not a number in g_loss: '1e999x'; write numbers like 0.25"),
    ],
    ids=[
        "latin-1",
        "utf-16",
        "binary",
        "epoch-nan",
        "epoch-inf",
        "epoch-negative",
        "epoch-zero",
        "epoch-fraction",
        "epoch-huge",
        "epoch-repeated",
        "epoch-decreasing",
        "empty-d_loss",
        "short-row",
        "empty-epoch",
        "field-over-csv-limit",
        "modes-inf",
        "modes-fraction",
        "not-a-number",
    ],
)
def test_a_malformed_history_gets_one_error_line(tmp_path: Path, capsys, content: bytes, message: str) -> None:
    (tmp_path / "h.csv").write_bytes(content)
    assert main(["diagnose", "--history", str(tmp_path / "h.csv")]) == 2
    assert message in _one_error_line(capsys)


def test_a_history_over_the_size_limit_is_refused_unread(tmp_path: Path, capsys) -> None:
    (tmp_path / "h.csv").write_bytes(HEADER + b"x" * files.MAX_BYTES)
    assert main(["diagnose", "--history", str(tmp_path / "h.csv")]) == 2
    assert "h.csv: over 10 MB, the most a history may hold" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("content", "verdict"),
    [
        (HEADER + b"1,inf,1\n2,0.4,-inf\n", "diverged at epoch 1"),  # a diverged run is an outcome, not bad input
        (b"\xef\xbb\xbf" + HEADER + b"1,1.1,1.2\n\n2,1.1,1.2\n", "good"),  # a byte-order mark, a blank line
        (MODES_HEADER + b"1,1.1,1.2,nan\n2,1.1,1.2,\n", "good"),  # not measured
    ],
    ids=["inf-losses", "bom", "modes-not-measured"],
)
def test_histories_within_the_rules_are_read(tmp_path: Path, capsys, content: bytes, verdict: str) -> None:
    (tmp_path / "h.csv").write_bytes(content)
    assert main(["diagnose", "--history", str(tmp_path / "h.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == verdict


def test_a_history_counted_from_epoch_0_is_read_as_epochs_trained(tmp_path: Path, capsys) -> None:
    """``for epoch in range(n)``, as the seed notebooks count: epochs 0-39 are read as 1-40, and said so."""
    rows = ["epoch,d_loss,g_loss,d_real,d_fake", "0,1.1,1.5,0.6,0.35", "1,0.6,3.0,0.8,0.12", "2,0.2,6.0,0.9,0.06"]
    rows += [f"{e},0.0,{45 + e % 5},1.0,0.0" for e in range(3, 40)]
    assert main(["diagnose", "--history", str(_csv(tmp_path / "h.csv", rows))]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "verdict: D-loss collapse at epoch 4"  # the file's epoch 3, the 4th trained
    assert err.strip() == f"{tmp_path / 'h.csv'} counts epochs from 0: read its epochs 0-39 as 1-40 (epochs trained)"


def test_samples_of_a_history_counted_from_0_are_named_by_the_files_epochs(tmp_path: Path, digits, capsys) -> None:
    rows = ["epoch,d_loss,g_loss"] + [f"{e},1.1,1.2" for e in range(0, 12)]
    np.savez(tmp_path / "s.npz", **{f"epoch_{e}": _repeated_digit(digits, e) for e in range(0, 12)})
    history, samples = str(_csv(tmp_path / "h.csv", rows)), str(tmp_path / "s.npz")
    assert main(["diagnose", "--history", history, "--samples", samples, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [e["epoch"] for e in result["evaluations"]] == list(range(1, 13)) and result["outcome"] == "bad"


def test_one_row_without_samples_is_too_early_to_tell(tmp_path: Path, capsys) -> None:
    """As a sweep's 1-epoch trial is: one epoch tells nothing (every loss flag needs two or more)."""
    assert main(["diagnose", "--history", str(_csv(tmp_path / "h.csv", ["epoch,d_loss,g_loss", "1,1.3,0.8"]))]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "verdict: too early to tell at epoch 1"


def _classes(digits, *keep: int) -> np.ndarray:
    """Held-out digits (which the judge never trained on) of the given classes, in [-1, 1]."""
    chosen = np.isin(digits.heldout_labels.numpy(), keep)
    return (digits.heldout_images.numpy()[chosen] / 127.5 - 1).astype(np.float32)


def _copies(digits, count: int, seed: int) -> np.ndarray:
    """``count`` held-out digits, each repeated with pixel noise: 200 near-copies."""
    rng = np.random.default_rng(seed)
    images = digits.heldout_images.numpy()[rng.choice(500, count, replace=False)] / 127.5 - 1
    repeated = images[np.arange(200) % count] + rng.normal(0, 0.15, (200, 1, 28, 28))
    return np.clip(repeated, -1, 1).astype(np.float32)


def _per_class(digits, per: int, noise: float, seed: int, shift: int = 0) -> np.ndarray:
    """``per`` held-out digits of every class drawn over and over (1,000 samples), with pixel noise and
    shifts of up to ``shift`` pixels: they cover the classes, few distinct images."""
    rng = np.random.default_rng(seed)
    labels = digits.heldout_labels.numpy()
    chosen = np.concatenate([rng.choice(np.flatnonzero(labels == c), per, replace=False) for c in range(10)])
    images = digits.heldout_images.numpy()[chosen[np.arange(1000) % len(chosen)]] / 127.5 - 1
    moves = rng.integers(-shift, shift + 1, (1000, 2))
    images = np.stack([np.roll(i, tuple(m), axis=(-2, -1)) for i, m in zip(images, moves)])
    return np.clip(images + rng.normal(0, noise, images.shape), -1, 1).astype(np.float32)


FINAL_ONLY = [
    *[pytest.param(lambda d, c=c: _classes(d, c), 1, id=f"one class: {c}") for c in (0, 1, 3, 5, 7)],
    *[pytest.param(lambda d, k=k: _classes(d, *k), 2, id=f"two classes: {k}") for k in ((1, 7), (0, 6), (3, 8))],
    pytest.param(lambda d: _classes(d, 2, 4, 9), 3, id="three classes"),
    pytest.param(lambda d: _classes(d, 0, 1, 2, 3), 4, id="four classes"),
    pytest.param(lambda d: _classes(d, 0, 1, 2, 3, 4, 5), 6, id="six classes"),
    *[pytest.param(lambda d, n=n: _copies(d, n, n), 3, id=f"{n} image(s) with noise") for n in (1, 2, 3)],
    pytest.param(lambda d: _per_class(d, 1, 0.0, 1), 10, id="10 digits, one per class, each 100 times"),
    pytest.param(lambda d: _per_class(d, 2, 0.06, 2), 10, id="20 digits, each 50 times with a little noise"),
    pytest.param(lambda d: _per_class(d, 4, 0.12, 3), 10, id="40 digits with noise"),
    pytest.param(lambda d: _per_class(d, 1, 0.06, 4, shift=1), 10, id="10 digits shifted by a pixel"),
]


@pytest.mark.parametrize(("make", "classes"), FINAL_ONLY)
def test_a_long_run_judged_on_its_final_samples_alone(tmp_path: Path, digits, capsys, make, classes: int) -> None:
    """A 40-epoch history and the last epoch's samples only, of a few classes or a few images: a mode
    collapse of unknown onset (f0e3c61 read all these "too early to tell at epoch 40"). The judge may
    count one digit more than there are classes: 50 held-out digits of a class, a few read as another."""
    rows = ["epoch,d_loss,g_loss,d_real,d_fake"] + [f"{e},1.2,1.0,0.6,0.4" for e in range(1, 41)]
    np.save(tmp_path / "s.npy", make(digits))
    history, samples = str(_csv(tmp_path / "h.csv", rows)), str(tmp_path / "s.npy")
    assert main(["diagnose", "--history", history, "--samples", samples, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "bad" and [f["name"] for f in result["flags"]] == ["mode_collapse"]
    found = re.fullmatch(
        r"mode collapse at epoch 40 \((~\d+ distinct images, )?(\d+)/10 digits; one evaluation: onset unknown\)",
        result["verdict"],
    )
    assert found and int(found[2]) <= classes + 1, result["verdict"]


@pytest.mark.parametrize(
    ("keep", "epochs", "outcome"),
    [((tuple(range(10)), 40, "good")), ((0, 1, 2, 3, 4, 5, 6, 8), 40, "good"), ((3,), 10, "unclear")],
    ids=["all ten at 40", "eight classes at 40", "one class at 10: too early"],
)
def test_final_samples_alone_spare_varied_digits_and_short_runs(
    tmp_path: Path, digits, capsys, keep: tuple, epochs: int, outcome: str
) -> None:
    rows = ["epoch,d_loss,g_loss,d_real,d_fake"] + [f"{e},1.2,1.0,0.6,0.4" for e in range(1, epochs + 1)]
    np.save(tmp_path / "s.npy", _classes(digits, *keep))
    history, samples = str(_csv(tmp_path / "h.csv", rows)), str(tmp_path / "s.npy")
    assert main(["diagnose", "--history", history, "--samples", samples, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == outcome


def _smoothed(images: np.ndarray, size: int) -> np.ndarray:
    """``images`` averaged over ``size`` x ``size`` squares, scaled back to unit spread: smooth blobs."""
    kernel = np.ones(size) / size
    for axis in (-2, -1):
        images = np.apply_along_axis(np.convolve, axis, images, kernel, mode="same")
    return images / images.std()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda rng: rng.uniform(-1, 1, (500, 1, 28, 28)), id="pure noise"),
        pytest.param(lambda rng: np.tanh(_smoothed(rng.normal(0, 1, (500, 1, 28, 28)), 9) * 1.5), id="smooth blobs"),
    ],
)
def test_unreadable_final_samples_of_a_long_run_are_low_quality_not_too_early(tmp_path: Path, capsys, make) -> None:
    """The last samples of a 40-epoch run, which the judge cannot read: "too early to tell at epoch 40" before."""
    rows = ["epoch,d_loss,g_loss,d_real,d_fake"] + [f"{e},1.2,1.0,0.6,0.4" for e in range(1, 41)]
    np.save(tmp_path / "s.npy", make(np.random.default_rng(0)).astype(np.float32))
    history, samples = str(_csv(tmp_path / "h.csv", rows)), str(tmp_path / "s.npy")
    assert main(["diagnose", "--history", history, "--samples", samples, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "bad" and result["verdict"] == "low quality (samples unreadable at epoch 40)"


def test_a_collapse_seen_once_after_a_change_in_the_losses_is_dated_there(tmp_path: Path, digits, capsys) -> None:
    """Three classes at epoch 40 after D loss drops and G loss jumps at epoch 11 (noisy, as logged)."""
    rng = np.random.default_rng(0)
    rows = ["epoch,d_loss,g_loss,d_real,d_fake"] + [
        f"{e},{(1.2 if e < 11 else 0.35) + rng.normal(0, 0.05):.3f},{(1.0 if e < 11 else 3.2) + rng.normal(0, 0.2):.3f},0.6,0.3"
        for e in range(1, 41)
    ]
    np.save(tmp_path / "s.npy", _classes(digits, 2, 4, 9))
    history, samples = str(_csv(tmp_path / "h.csv", rows)), str(tmp_path / "s.npy")
    assert main(["diagnose", "--history", history, "--samples", samples, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(f["name"], f["epoch"]) for f in result["flags"]] == [("mode_collapse", 11)]
    assert "one evaluation, dated by the losses: from epoch 11 D loss" in result["verdict"]


def test_diagnose_shows_how_many_distinct_images_the_samples_hold(tmp_path: Path, digits, capsys) -> None:
    rows = ["epoch,d_loss,g_loss,d_real,d_fake"] + [f"{e},1.2,1.0,0.6,0.4" for e in range(1, 41)]
    history = str(_csv(tmp_path / "h.csv", rows))
    for samples, shown in ((_per_class(digits, 2, 0.06, 2), "~20"), (_classes(digits, *range(10)), "1000+")):
        np.save(tmp_path / "s.npy", samples)
        assert main(["diagnose", "--history", history, "--samples", str(tmp_path / "s.npy")]) == 0
        assert f"  distinct: {shown}\n" in capsys.readouterr().out
