"""Hostile input, generated: a few hundred mutations of a grid file and of a history CSV, thrown at
`gansweep run --dry-run` and `gansweep diagnose --history`; values of every type for every argument of
``gansweep.run`` and ``gansweep.report``; and damaged stores (journal lines and mlflow.db bytes). Whatever a
mutation makes of the input, the command exits 0 (it still reads) or 2 with one ``error:`` line, never
with a traceback, and the store beside it is byte for byte as it was.

The mutations are seeded (``random.Random(SEED)``), so a failure names the same input every run: the
test id is the case number and the failing text is in the assertion message.
"""

from __future__ import annotations

import copy
import random
import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
import yaml

import gansweep
from gansweep.cli import main
from gansweep.errors import GansweepError
from gansweep.options import RunOptions
from tests.test_bad_input import GRID, _fingerprint, recorded  # noqa: F401  (the store fixture, by name)

SEED = 15
GRIDS = 300
HISTORIES = 150
RICH_GRID = """name: e
epochs: 2
device: cpu
seeds: [0, 1]
eval_every: 1
early_stop: [diverged]
objective: {metric: fid_mnist, direction: minimize}
models:
  - model: cs231n-mlp
    batch_size: 500
    grid: {lr: [1.0e-3, 2.0e-4], latent_dim: [64, 96]}
    points:
      - {lr: 5.0e-4, betas: [0.5, 0.999], reported: "Good, then unstable"}
search:
  model: mlp
  n_trials: 3
  space: {lr: {low: 1.0e-4, high: 1.0e-2, log: true}, batch_size: {choices: [128, 256]}}
"""
HISTORY = "epoch,d_loss,g_loss,d_real,d_fake\n" + "".join(
    f"{e},{0.6 - 0.01 * e:.3f},{1.2 + 0.05 * e:.3f},0.7,0.3\n" for e in range(1, 13)
)
HOSTILE = [
    "",
    " ",
    "\n",
    "\t",
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    '"',
    "#",
    "&a",
    "*a",
    "!!python/object:os.system",
    "!!binary",
    "<<: *a",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "\x00",
    "\x1b[31m",
    "\xff",
    "\ufeff",
    "é",
    "true",
    "no",
    "null",
    "~",
    "-1",
    "0",
    "1e999",
    "-1e999",
    ".nan",
    ".inf",
    "nan",
    "inf",
    "9" * 300,
    "1.5",
    "0x10",
    "1_000",
    "2e-4",
    "[1, [2, [3]]]",
    "{a: 1}",
    "a" * 5000,
    "../../etc/passwd",
    "/tmp",
    "cuda:7",
    "banana",
]


def _mutate(text: str, rng: random.Random, rounds: int) -> bytes:
    """``rounds`` edits: a hostile token in place of a token, inserted, a line dropped, doubled or
    re-indented, or a byte flipped."""
    data = text
    for _ in range(rounds):
        lines = data.split("\n")
        i = rng.randrange(len(lines))
        kind = rng.randrange(6)
        if kind == 0:  # a value, a key or a punctuation mark replaced
            tokens = lines[i].replace(":", " : ").replace(",", " , ").split(" ")
            j = rng.randrange(len(tokens))
            tokens[j] = rng.choice(HOSTILE)
            lines[i] = " ".join(tokens).replace(" : ", ": ").replace(" , ", ", ")
        elif kind == 1:
            at = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:at] + rng.choice(HOSTILE) + lines[i][at:]
        elif kind == 2:
            del lines[i]
        elif kind == 3:
            lines.insert(i, lines[i])
        elif kind == 4:
            lines[i] = " " * rng.choice([0, 1, 3, 4, 6]) + lines[i].lstrip()
        else:
            lines[i] = "".join(rng.choice(HOSTILE) if rng.random() < 0.05 else c for c in lines[i])
        data = "\n".join(lines)
    raw = data.encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:  # bytes that are not UTF-8
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + bytes([rng.randrange(128, 256)]) + raw[at:]
    return raw


def _cases(base: list[str], count: int, salt: int) -> list[bytes]:
    rng = random.Random(SEED * 1000 + salt)
    return [_mutate(rng.choice(base), rng, rng.choice([1, 1, 2, 3, 5])) for _ in range(count)]


def _check(argv: list[str], data: bytes, capsys) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    shown = data[:300]
    assert code in (0, 2), f"exit {code} on {shown!r}: {err[-2000:]}"
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{shown!r}: {err[-2000:]}"


def test_mutated_grids_get_a_dry_run_or_one_error_line(recorded: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    store = recorded
    before = _fingerprint(store)
    path = tmp_path / "grid.yaml"
    for data in _cases([GRID, RICH_GRID], GRIDS, salt=1):
        path.write_bytes(data)
        _check(["run", str(path), "--store", str(store), "--dry-run", "--json"], data, capsys)
    assert _fingerprint(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml"]  # and nothing written beside it


def test_mutated_histories_get_a_verdict_or_one_error_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "history.csv"
    for data in _cases([HISTORY], HISTORIES, salt=2):
        path.write_bytes(data)
        _check(["diagnose", "--history", str(path)], data, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


API_VALUES = [
    None,
    True,
    0,
    -1,
    10**20,
    1.5,
    float("nan"),
    b"e",
    [],
    [1, "a"],
    {},
    {"a": 1},
    {0, 1},
    object(),
    np.int64(2),
    np.float32(1.5),
    np.bool_(True),
    np.array([1, 2]),
    Path("e.yaml"),
]
"""Values a notebook may pass where gansweep expects another type (no text: a text name or store is valid,
and would start a sweep of its own)."""


def _refused_or_done(call, store: Path, shown: str) -> None:
    """``call`` returns, or raises a GansweepError of one line, leaving ``store`` as it was; nothing else."""
    before = _fingerprint(store)
    try:
        call()
    except GansweepError as error:
        assert "\n" not in str(error) and str(error), f"{shown}: {error!r}"
        assert _fingerprint(store) == before, shown
    except Exception as error:  # anything but a GansweepError is a traceback in a notebook
        raise AssertionError(f"{shown}: {type(error).__name__}: {error}") from error


API_DRAWS = 6
"""Values each argument gets, drawn (seeded) from ``API_VALUES``: every value for every argument took 80 s
of the suite, most of it in the calls that pass and open the stores."""


def _api_places(grid: dict, options: dict) -> dict[str, Callable[[object], object]]:
    """Where a value goes -> a call with it there."""
    places: dict[str, Callable[[object], object]] = {
        "run(grid)": lambda v: gansweep.run(v, **options),
        "report(sweep)": lambda v: gansweep.report(v, store=options["store"]),
        "report(store=)": lambda v: gansweep.report("e", store=v),
        "report(storage=)": lambda v: gansweep.report("e", storage=v),
    }
    for name in [f.name for f in fields(RunOptions) if f.name != "store"] + ["progress"]:
        places[f"run({name}=)"] = lambda v, name=name: gansweep.run(grid, **{**options, name: v})
    for where in (("epochs",), ("models", 0, "batch_size"), ("models", 0, "grid", "lr"), ("seeds",)):
        places[f"grid{list(where)}"] = lambda v, where=where: gansweep.run(_put(grid, where, v), **options)
    return places


def _put(grid: dict, where: tuple, value: object) -> dict:
    damaged = copy.deepcopy(grid)
    part = damaged
    for key in where[:-1]:
        part = part[key]
    part[where[-1]] = value
    return damaged


def test_the_api_takes_any_argument_type_or_names_it(recorded: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    """Every argument of gansweep.run and gansweep.report, given values of ``API_VALUES``: a result (the
    grid's one point is already trained, so nothing trains) or one line naming the argument."""
    monkeypatch.chdir(tmp_path)  # a relative store, if one were made, lands here
    store = tmp_path / "mlruns"
    shutil.copytree(recorded, store)
    options = {"store": str(store), "workers": 1, "progress": False}
    rng = random.Random(SEED)
    for place, call in _api_places(yaml.safe_load(GRID), options).items():
        for value in rng.sample(API_VALUES, API_DRAWS):
            _refused_or_done(lambda: call(value), store, f"{place} {value!r}")  # noqa: B023
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlruns"]


JOURNALS = 40
DATABASES = 12


def _damage(data: bytes, rng: random.Random, lines: bool) -> bytes:
    """One kind of damage: for a journal, a line inserted, dropped, doubled, cut or with a byte flipped
    (never the torn last line, which is repaired); for any file, a block overwritten, or a cut."""
    if lines:
        parts = data.split(b"\n")[:-1]
        i = rng.randrange(len(parts))
        kind = rng.randrange(5)
        if kind == 0:
            parts.insert(i, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))).replace(b"\n", b" "))
        elif kind == 1:
            del parts[i]
        elif kind == 2:
            parts.insert(i, parts[i])
        elif kind == 3:
            parts[i] = parts[i][: rng.randrange(len(parts[i]))]
        else:
            j = rng.randrange(len(parts[i]))
            parts[i] = parts[i][:j] + bytes([rng.randrange(256)]).replace(b"\n", b" ") + parts[i][j + 1 :]
        return b"".join(p + b"\n" for p in parts)
    at = rng.randrange(len(data))
    if rng.random() < 0.5:
        return data[:at]
    return data[:at] + bytes(rng.randrange(256) for _ in range(4096)) + data[at + 4096 :]


def test_damaged_stores_get_a_result_or_one_error_line(recorded: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    """Seeded damage to the journal (read by status, report and run --dry-run) and to mlflow.db (read by
    diagnose RUN_ID): each command still reads the store, or says in one line what is damaged."""
    rng = random.Random(SEED * 1000 + 3)
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    [run] = [p.name for p in (recorded / "artifacts").iterdir() if (p / "artifacts" / "history.json").exists()]
    for i in range(JOURNALS + DATABASES):
        store = tmp_path / f"s{i}"
        shutil.copytree(recorded, store)
        name = "optuna.journal" if i < JOURNALS else "mlflow.db"
        damaged = _damage((store / name).read_bytes(), rng, lines=i < JOURNALS)
        (store / name).write_bytes(damaged)
        commands = (
            [["status", str(grid)], ["report", "e"], ["run", str(grid), "--dry-run"]]
            if i < JOURNALS
            else [["diagnose", run]]
        )
        for argv in commands:
            _check([*argv, "--store", str(store)], damaged, capsys)
        shutil.rmtree(store)
