"""End-to-end sweeps on a tiny grid: real training, a real Optuna journal and a real MLflow store."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gansweep.cli import main
from gansweep.config import load_config
from gansweep.diagnostics.metrics import READABLE
from gansweep.sweep import SweepSettings, _layout, _run, open_study

TINY = """
name: tiny
epochs: {epochs}
device: cpu
group_size: 1
models:
  - model: cs231n-mlp
    batch_size: {batch_size}
    grid:
      lr: {lrs}
"""


def _grid(tmp_path: Path, epochs: int = 2, batch_size: int = 500, lrs: str = "[1e-3, 2e-4]") -> Path:
    """One trial at a time (``group_size: 1``): these tests count what a kill or Ctrl-C leaves of it
    (``test_groups.py`` kills a group)."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(epochs=epochs, batch_size=batch_size, lrs=lrs))
    return path


def _client(store: Path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    return client, client.get_experiment_by_name("tiny").experiment_id


def _trial_runs(store: Path, status: str | None = None):
    client, experiment = _client(store)
    runs = client.search_runs([experiment], "tags.`gansweep.role` = 'trial'")
    return [r for r in runs if status is None or r.info.status == status]


def _trials(store: Path, grid: Path, storage: str | None = None):
    settings = SweepSettings(load_config(grid), "", "tiny", store, storage=storage)
    return open_study(settings, create=False).get_trials(deepcopy=False)


def _final(client, run_id: str, key: str) -> float:
    """A metric's value at the run's last epoch."""
    return max(client.get_metric_history(run_id, key), key=lambda m: m.step).value


def _artifact(client, run_id: str, name: str, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    return json.loads(Path(client.download_artifacts(run_id, name, str(folder))).read_text())


def test_sweep_tracks_every_trial_and_a_second_run_trains_nothing(tmp_path: Path, capsys) -> None:
    grid, store = _grid(tmp_path), tmp_path / "mlruns"
    assert main(["run", str(grid), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "2/2 trials complete, 2 trained in this run" in out
    assert re.search(
        r"\| 0.001 \| (good|bad|unclear) \| [^|]+ \| [\d.]* \| [\d.]+ \|", out
    )  # lr, outcome, verdict, fid, readable

    client, experiment = _client(store)
    parents = client.search_runs([experiment], "tags.`gansweep.role` = 'sweep'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = _trial_runs(store)
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.info.run_name for r in runs} == {"lr 1e-3", "lr 2e-4"}  # what varies
    trials = {t.user_attrs["mlflow_run_id"]: t for t in _trials(store, grid)}
    for run in runs:
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.params["model"] == "cs231n-mlp" and run.data.params["batch_size"] == "500"
        assert run.data.tags["gansweep.model"] == "cs231n-mlp" and run.data.tags["gansweep.key"].startswith(
            "mnist-5k:cs231n-mlp:"
        )
        for key in ("d_loss", "g_loss", "d_real", "d_fake"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2]
        assert len(client.get_metric_history(run.info.run_id, "d_loss_per_step")) == 2 * 9
        assert "info_loss" not in run.data.metrics  # no Q head
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {
            "trial.json",
            "epochs.csv",
            "steps.csv",
            "samples.npy",
            "checkpoint.pt",
            "diagnostics.json",
        } <= artifacts
        assert {
            "grids",
            "samples_strip.png",
            "samples.gif",
            "loss.png",
            "probability.png",
            "metrics.png",
            "interpolation.png",
        } <= artifacts
        for key in ("fid_mnist", "modes_covered", "diversity", "confidence"):  # evaluated after every epoch
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2]
        readable = _final(client, run.info.run_id, "readable") >= READABLE  # else the worst value: no score
        fid = _final(client, run.info.run_id, "fid_mnist") if readable else math.inf
        assert trials[run.info.run_id].value == pytest.approx(fid)

        # The verdict and flags recorded are those of the run's own history, diagnosed again here.
        stored = _artifact(client, run.info.run_id, "diagnostics.json", tmp_path / run.info.run_id)
        assert main(["diagnose", run.info.run_id, "--store", str(store), "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        flags = {f["name"]: f["epoch"] for f in again["flags"]}
        assert {f["name"]: f["epoch"] for f in stored["flags"]} == flags and stored["verdict"] == again["verdict"]
        tags = run.data.tags
        assert tags["gansweep.verdict"] == again["verdict"] and tags["gansweep.outcome"] == again["outcome"]
        assert {
            k.removeprefix("gansweep.flag."): int(v) for k, v in tags.items() if k.startswith("gansweep.flag.")
        } == flags
        assert (again["verdict"] == "good") == (not flags)

    assert main(["run", str(grid), "--store", str(store)]) == 0
    assert "2/2 trials complete, 0 trained in this run" in capsys.readouterr().out
    assert len(_trial_runs(store)) == 2
    assert len(_trials(store, grid)) == 2


def test_dry_run_reports_what_is_already_complete(tmp_path: Path, capsys) -> None:
    grid, store = _grid(tmp_path, epochs=1, lrs="[1e-3]"), tmp_path / "mlruns"
    assert main(["run", str(grid), "--store", str(store)]) == 0
    _grid(tmp_path, epochs=1, lrs="[1e-3, 5e-4]")
    capsys.readouterr()
    assert main(["run", str(grid), "--store", str(store), "--dry-run", "--json"]) == 0
    assert [t["state"] for t in json.loads(capsys.readouterr().out)] == ["complete", "waiting"]


def _start(grid: Path, store: Path, *extra: str, sigint: signal.Handlers = signal.SIG_DFL) -> subprocess.Popen:
    command = [sys.executable, "-m", "gansweep.cli", "run", str(grid), "--store", str(store), *extra]
    # Ctrl-C as in a terminal, even when pytest runs in the background (which ignores SIGINT, and children inherit that)
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
        start_new_session=True,  # a group of its own, which a test may signal whole
    )


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _checkpoints(store: Path) -> list[Path]:
    """Every run's ``checkpoint.pt`` artifact: written after each epoch, last with the run's pictures."""
    return list((store / "artifacts").glob("*/artifacts/checkpoint.pt"))


def assert_whole(client, run_id: str, folder: Path) -> None:
    """The run's metrics, read back from MLflow, are its history.json's, every epoch and every step:
    a resumed run carries the epochs its checkpoint restored, not only those trained after."""
    history = _artifact(client, run_id, "history.json", folder / run_id)
    metrics = client.get_run(run_id).data.metrics
    for key in ("d_loss", "g_loss", "d_fake", "fid_mnist", "modes_covered", "seconds"):
        assert key in metrics
        logged = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        assert sorted(logged) == [(e["epoch"], pytest.approx(e[key])) for e in history["epochs"] if key in e], key
    for key in ("d_loss", "g_loss"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run_id, f"{key}_per_step"))
        assert logged == [(i + 1, pytest.approx(v)) for i, v in enumerate(history["steps"][key])], key


def test_killed_sweep_resumes_only_the_missing_points_from_their_checkpoint(tmp_path: Path) -> None:
    grid, store = _grid(tmp_path, epochs=4, batch_size=100, lrs="[1e-3, 5e-4, 2e-4]"), tmp_path / "mlruns"
    proc = _start(grid, store)
    # kill once the first trial is FINISHED and the second has written its first epoch checkpoint
    # (checkpoints exist only once the run has created its stores: polling MLflow earlier would race
    # its first-time migrations)
    _wait_for(lambda: len(_checkpoints(store)) == 2 and len(_trial_runs(store, "FINISHED")) == 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    finished_before = {r.data.tags["gansweep.key"] for r in _trial_runs(store, "FINISHED")}
    rerun = _start(grid, store)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert "3/3 trials complete, 2 trained in this run" in out
    assert "marked interrupted" in err

    finished = _trial_runs(store, "FINISHED")
    keys = [r.data.tags["gansweep.key"] for r in finished]
    assert len(keys) == 3 == len(set(keys)) and finished_before <= set(keys)
    killed = _trial_runs(store, "KILLED")
    assert len(killed) == 1
    resumed = {r.data.tags["gansweep.key"]: int(r.data.tags["gansweep.resumed_from_epoch"]) for r in finished}
    killed_key = killed[0].data.tags["gansweep.key"]
    assert resumed.pop(killed_key) >= 1 and set(resumed.values()) == {0}
    states = [t.state.name for t in _trials(store, grid)]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1
    client, _ = _client(store)
    for run in finished:  # the resumed one too: its run holds epochs 1-4, not only those after its checkpoint
        assert_whole(client, run.info.run_id, tmp_path / "read")


def test_ctrl_c_marks_the_trial_interrupted_and_the_next_run_resumes_it(tmp_path: Path) -> None:
    grid, store = _grid(tmp_path, epochs=4, batch_size=100, lrs="[1e-3]"), tmp_path / "mlruns"
    proc = _start(grid, store)
    _wait_for(lambda: bool(_checkpoints(store)))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command again" in err
    assert [r.info.status for r in _trial_runs(store)] == ["KILLED"]
    assert [t.state.name for t in _trials(store, grid)] == ["FAIL", "WAITING"]  # queued again at once
    assert _trials(store, grid)[0].user_attrs["interrupted"] is True

    rerun = _start(grid, store)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    finished = _trial_runs(store, "FINISHED")
    assert len(finished) == 1 and int(finished[0].data.tags["gansweep.resumed_from_epoch"]) >= 1
    assert [t.state.name for t in _trials(store, grid)] == ["FAIL", "COMPLETE"]


@pytest.mark.parametrize(
    ("whole_group", "sigint"),
    [(False, signal.SIG_DFL), (True, signal.SIG_DFL), pytest.param(False, signal.SIG_IGN, marks=pytest.mark.slow)],
    ids=["run alone", "whole group", "run started in the background"],
)
def test_sigterm_stops_the_workers_as_ctrl_c_does(tmp_path: Path, capsys, whole_group: bool, sigint) -> None:
    """`kill PID` reaches the run alone, which passes it on; Slurm's scancel and systemd signal the whole
    group, whose workers leave it to the run. Either way no trial or run is left RUNNING for `gansweep
    status` to report as training, and no trial counts a takeover. A run started with `&` or nohup ignores
    SIGINT and its workers inherited that: they trained on, and the run left after a minute, its runs open."""
    grid, store = _grid(tmp_path, epochs=6, batch_size=100, lrs="[1e-3, 5e-4]"), tmp_path / "mlruns"
    proc = _start(grid, store, "--workers", "2", sigint=sigint)
    _wait_for(lambda: len(_checkpoints(store)) == 2)
    os.killpg(proc.pid, signal.SIGTERM) if whole_group else proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130 and "run the same command again" in err, err
    assert sorted(r.info.status for r in _trial_runs(store)) == ["KILLED", "KILLED"]
    assert sorted(t.state.name for t in _trials(store, grid)) == ["FAIL", "FAIL", "WAITING", "WAITING"]
    assert not any(t.user_attrs.get("takeovers") for t in _trials(store, grid))  # interrupted, not dead
    capsys.readouterr()
    assert main(["status", str(grid), "--store", str(store), "--json"]) == 0
    assert [row["state"] for row in json.loads(capsys.readouterr().out)] == ["waiting", "waiting"]


THREE_POINTS = {"epochs": 1, "lrs": "[1e-3, 5e-4, 2e-4]"}


@pytest.fixture(scope="module")
def trained_alone(tmp_path_factory) -> dict[str, dict]:
    """Key -> final epoch of the three points, trained in turn by one worker."""
    tmp = tmp_path_factory.mktemp("alone")
    grid, store = _grid(tmp, **THREE_POINTS), tmp / "mlruns"
    assert main(["run", str(grid), "--store", str(store)]) == 0
    return {t.user_attrs["gansweep_key"]: t.user_attrs["final"] for t in _trials(store, grid)}


@pytest.mark.slow
@pytest.mark.parametrize("spread", [["--workers", "2"], ["--devices", "cpu", "--trials-per-device", "2"]])
def test_two_workers_train_each_point_exactly_once(tmp_path: Path, capsys, spread: list[str], trained_alone) -> None:
    grid, store = _grid(tmp_path, **THREE_POINTS), tmp_path / "mlruns"
    assert main(["run", str(grid), "--store", str(store), *spread]) == 0
    assert "3/3 trials complete, 3 trained in this run" in capsys.readouterr().out
    keys = [r.data.tags["gansweep.key"] for r in _trial_runs(store, "FINISHED")]
    assert len(keys) == 3 == len(set(keys))
    trials = _trials(store, grid)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3

    # Same losses as one worker training them in turn (workers get 1 thread each instead of 2, which
    # may only reorder floating-point sums).
    assert {t.user_attrs["gansweep_key"] for t in trials} == set(trained_alone)
    for trial in trials:
        for key in ("d_loss", "g_loss"):
            assert trial.user_attrs["final"][key] == pytest.approx(
                trained_alone[trial.user_attrs["gansweep_key"]][key], rel=1e-3
            )


def test_workers_auto_starts_the_workers_its_rule_picks(tmp_path: Path, capsys, monkeypatch) -> None:
    """The rule itself: test_layout.py. Here, that the run starts what it picks, and says so."""
    monkeypatch.setattr(_layout, "START", 1.0)  # this tiny grid stands in for one long enough to pay
    monkeypatch.setattr(_run, "cores", lambda: 2)
    grid, store = _grid(tmp_path, epochs=1), tmp_path / "mlruns"
    assert main(["run", str(grid), "--store", str(store)]) == 0  # --workers auto: the default
    out, err = capsys.readouterr()
    assert "--workers auto: 2 worker(s) x 1 thread(s) for 2 trial(s)" in err
    assert "2/2 trials complete, 2 trained in this run" in out
    assert [t.state.name for t in _trials(store, grid)] == ["COMPLETE"] * 2
    monkeypatch.setattr(_layout, "START", math.inf)  # nothing pays: one worker, in this process
    grid.write_text(grid.read_text().replace("[1e-3, 2e-4]", "[1e-3, 2e-4, 5e-4]"))
    assert main(["run", str(grid), "--store", str(store)]) == 0
    threads = torch.get_num_threads()
    assert f"--workers auto: 1 worker(s) x {threads} thread(s) for 1 trial(s)" in capsys.readouterr().err  # the new one


def test_a_second_run_on_the_same_sweep_is_refused_while_one_runs(tmp_path: Path) -> None:
    grid, store = _grid(tmp_path, epochs=30, batch_size=100, lrs="[1e-3]"), tmp_path / "mlruns"
    proc = _start(grid, store)
    try:
        _wait_for(lambda: bool(_checkpoints(store)))
        second = _start(grid, store)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2 and "already running in this store" in err
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def test_search_samples_n_trials_and_a_rerun_adds_none(tmp_path: Path, capsys) -> None:
    grid, store = tmp_path / "tiny.yaml", tmp_path / "mlruns"
    grid.write_text("""
name: tiny
epochs: 2
device: cpu
objective: {metric: d_gap, direction: minimize}
search:
  model: cs231n-mlp
  n_trials: 3
  sampler: random
  batch_size: 500
  space:
    lr: {low: 1.0e-4, high: 1.0e-2, log: true}
    latent_dim: {choices: [16, 96]}
""")
    assert main(["run", str(grid), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "3/3 trials complete, 3 trained in this run" in out
    trials = [t for t in _trials(store, grid) if t.state.name == "COMPLETE"]
    assert len(trials) == 3 and all(1e-4 <= t.params["lr"] <= 1e-2 for t in trials)
    assert all(t.params["latent_dim"] in (16, 96) for t in trials)
    runs = _trial_runs(store, "FINISHED")
    assert sorted(float(r.data.params["lr_g"]) for r in runs) == sorted(t.params["lr"] for t in trials)
    client, _ = _client(store)
    for trial in trials:  # the objective: |D(x) - D(G(z))| of the final epoch
        d_real, d_fake = (_final(client, trial.user_attrs["mlflow_run_id"], key) for key in ("d_real", "d_fake"))
        assert trial.value == pytest.approx(abs(d_real - d_fake))
    assert main(["run", str(grid), "--store", str(store)]) == 0
    assert "0 trained in this run" in capsys.readouterr().out


@pytest.mark.slow
def test_ui_opens_the_runs_page_and_sigterm_stops_every_process_it_started(tmp_path: Path, capsys) -> None:
    import shutil
    import socket
    import urllib.request

    grid, original, store = _grid(tmp_path, epochs=1, lrs="[1e-3]"), tmp_path / "mlruns", tmp_path / "moved" / "mlruns"
    assert main(["run", str(grid), "--store", str(original)]) == 0
    shutil.move(original, store)  # trained in one place, browsed in another
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gansweep.cli", "ui", "--store", str(store), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    client, _ = _client(store)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the classic view, not GenAI
    parent = client.search_runs([experiment.experiment_id], "tags.`gansweep.role` = 'sweep'")[0]
    assert parent.data.tags["mlflow.note.content"].startswith("### cs231n-mlp")  # its description is the report
    try:
        assert proc.stdout.readline().startswith("starting the MLflow UI for sqlite:///")
        query = "viewStateShareKey=gansweep&compareRunsMode=CHART&workflowType=machine_learning"
        page = f"open http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs?{query}"
        assert proc.stdout.readline().startswith(page)  # printed once the server answers

        def healthy() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200
            except OSError:
                return False

        assert healthy()  # no wait: the address is printed once it answers
        body = urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=tiny", timeout=5
        ).read()
        assert b'"name": "tiny"' in body or b'"name":"tiny"' in body
        run = _trial_runs(store)[0].info.run_id
        listing = urllib.request.urlopen(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/artifacts/list?run_id={run}", timeout=5
        ).read()
        assert b"checkpoint.pt" in listing and b"loss.png" in listing
        history = urllib.request.urlopen(
            f"http://127.0.0.1:{port}/get-artifact?path=history.json&run_uuid={run}", timeout=5
        ).read()
        assert b'"epochs"' in history
        os.kill(proc.pid, signal.SIGTERM)  # gansweep ui alone, as a service manager would
        assert proc.wait(timeout=30) == 0

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        _wait_for(lambda: not listening(), timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_early_stop_ends_a_collapsing_trial_and_prunes_a_search_one(tmp_path: Path, capsys) -> None:
    grid, store = tmp_path / "tiny.yaml", tmp_path / "mlruns"
    grid.write_text(
        TINY.format(epochs=5, batch_size=500, lrs="[2.0e-2]")
        + """early_stop: [d_collapse]
search:
  model: cs231n-mlp
  n_trials: 1
  batch_size: 500
  space:
    lr: {choices: [5.0e-2]}
"""
    )
    assert main(["run", str(grid), "--store", str(store)]) == 0
    capsys.readouterr()
    client, _ = _client(store)
    runs = {r.info.run_id: r for r in _trial_runs(store, "FINISHED")}
    trials = _trials(store, grid)
    assert [(t.state.name, bool(t.user_attrs.get("search"))) for t in trials] == [("COMPLETE", False), ("PRUNED", True)]
    for trial in trials:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["gansweep.stopped"].startswith("early stop: D-loss collapse at epoch")
        assert "gansweep.flag.d_collapse" in run.data.tags
        assert len(client.get_metric_history(run.info.run_id, "d_loss")) < 5


def test_a_run_stopped_early_is_not_adopted_by_a_sweep_that_trains_every_epoch(tmp_path: Path, capsys) -> None:
    grid, store = tmp_path / "tiny.yaml", tmp_path / "mlruns"
    grid.write_text(TINY.format(epochs=5, batch_size=500, lrs="[2.0e-2]") + "early_stop: [d_collapse]\n")
    assert main(["run", str(grid), "--store", str(store)]) == 0
    [stopped] = _trial_runs(store, "FINISHED")
    assert stopped.data.tags["gansweep.stopped"].startswith("early stop:")
    (store / "optuna.journal").unlink()
    grid.write_text(grid.read_text().replace("early_stop: [d_collapse]", "early_stop: []"))
    capsys.readouterr()
    assert main(["run", str(grid), "--store", str(store)]) == 0
    assert "1/1 trials complete, 1 trained in this run" in capsys.readouterr().out
    [trial] = _trials(store, grid)
    assert trial.user_attrs["mlflow_run_id"] != stopped.info.run_id


def test_storage_and_tracking_uri_come_from_the_environment(tmp_path: Path, capsys, monkeypatch) -> None:
    grid, shared = _grid(tmp_path, epochs=1, lrs="[1e-3]"), tmp_path / "shared"
    shared.mkdir()
    storage = f"sqlite:///{shared / 'optuna.db'}"
    monkeypatch.setenv("GANSWEEP_STORAGE", storage)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{shared / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # the default --store is ./mlruns here: neither store may land in it
    assert main(["run", str(grid)]) == 0
    assert "1/1 trials complete, 1 trained in this run" in capsys.readouterr().out
    assert not (tmp_path / "mlruns" / "optuna.journal").exists() and not (tmp_path / "mlruns" / "mlflow.db").exists()
    assert [t.state.name for t in _trials(tmp_path / "mlruns", grid, storage)] == ["COMPLETE"]
    assert [r.info.status for r in _trial_runs(shared)] == ["FINISHED"]
    assert (shared / "optuna.db.gansweep-lock").exists()  # the sweep's lock, beside the database

    monkeypatch.delenv("GANSWEEP_STORAGE")
    assert main(["status", str(grid), "--storage", storage]) == 0
    assert "1 complete, 0 running, 0 failed, 0 waiting" in capsys.readouterr().out


def test_amp_in_the_grid_reaches_the_trainer(tmp_path: Path) -> None:
    grid, store = _grid(tmp_path, epochs=1, lrs="[1e-3]"), tmp_path / "mlruns"
    grid.write_text(grid.read_text() + "amp: true\n")
    assert main(["run", str(grid), "--store", str(store)]) == 0
    client, _ = _client(store)
    (run,) = _trial_runs(store)
    config = _artifact(client, run.info.run_id, "trial.json", tmp_path)
    assert config["amp"] is True and set(config["precision_rates"]) == {"fp32", "bf16"}
    rates = config["precision_rates"]
    assert config["precision"] == ("bf16" if rates["bf16"] > rates["fp32"] else "fp32")  # the faster, measured
    (trial,) = _trials(store, grid)
    assert trial.user_attrs["precision"] == config["precision"]


def _fingerprint(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_copied_store_is_its_own_and_outlives_the_original(tmp_path: Path, capsys) -> None:
    """Train on one machine, browse on another: a copy reads and writes only its own artifacts."""
    import shutil

    grid, original, copy = _grid(tmp_path, epochs=1, lrs="[1e-3]"), tmp_path / "a" / "mlruns", tmp_path / "b" / "mlruns"
    assert main(["run", str(grid), "--store", str(original)]) == 0
    shutil.copytree(original, copy)
    before = _fingerprint(original)
    _grid(tmp_path, epochs=1, lrs="[1e-3, 5e-4]")  # one point more, trained in the copy
    assert main(["run", str(grid), "--store", str(copy)]) == 0
    assert _fingerprint(original) == before  # nothing written into the original, not even its report
    shutil.rmtree(original)

    client, _ = _client(copy)
    runs = _trial_runs(copy)
    assert len(runs) == 2
    for run in runs:
        assert run.info.artifact_uri.startswith(copy.resolve().as_uri())
        assert {"checkpoint.pt", "history.json", "loss.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    capsys.readouterr()
    assert main(["diagnose", runs[0].info.run_id, "--store", str(copy)]) == 0
    assert capsys.readouterr().out.startswith("verdict: ")
    assert main(["report", str(grid), "--store", str(copy)]) == 0


def test_a_lost_journal_adopts_the_finished_runs_instead_of_training_again(tmp_path: Path, capsys) -> None:
    grid, store = _grid(tmp_path, epochs=1), tmp_path / "mlruns"
    assert main(["run", str(grid), "--store", str(store)]) == 0
    before = {r.data.tags["gansweep.key"]: r.info.run_id for r in _trial_runs(store)}
    (store / "optuna.journal").unlink()  # lost, or the sweep moved to another --storage
    capsys.readouterr()
    grid.write_text(grid.read_text().replace("[1e-3, 2e-4]", "[1e-3, 2e-4, 5e-4]"))  # and one point more
    assert main(["run", str(grid), "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    assert "3/3 trials complete, 1 trained in this run" in out
    assert err.count("trained before; not trained again") == 2
    runs = _trial_runs(store)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    records = {t.user_attrs["gansweep_key"]: t for t in _trials(store, grid)}
    assert {key: records[key].user_attrs["mlflow_run_id"] for key in before} == before
    assert all(t.state.name == "COMPLETE" and t.user_attrs["verdict"] for t in records.values())
    client, _ = _client(store)
    [parent] = client.search_runs([_client(store)[1]], "tags.`gansweep.role` = 'sweep'")
    stored = Path(client.download_artifacts(parent.info.run_id, "grid.yaml", str(tmp_path)))
    assert stored.read_text() == grid.read_text()  # the parent keeps the grid as edited, not the first one


def test_the_runs_an_earlier_run_could_not_end_are_ended_as_its_interrupted_and_failed_trials(tmp_path: Path) -> None:
    """An interrupted trial's run that the next run ends carries gansweep.state (it was tagged
    gansweep.outcome 'interrupted', the column of good, bad or unclear in the UI)."""
    import optuna

    from gansweep.sweep._record import attrs
    from gansweep.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", artifact_root=tmp_path / "artifacts")
    parent = tracker.sweep_run("e", "name: e\n")
    runs = {state: tracker.start_trial(parent, state, {}, {}) for state in ("interrupted", "failed")}
    study = optuna.create_study()
    for state, run_id in runs.items():
        trial = study.ask()
        for attr, value in attrs(run_id=run_id, error="ValueError: x" if state == "failed" else None).items():
            trial.set_user_attr(attr, value)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    said: list = []
    _run._end_dead_runs(study, tracker, said.append)
    interrupted, failed = (tracker.client.get_run(runs[state]) for state in ("interrupted", "failed"))
    assert (interrupted.info.status, failed.info.status) == ("KILLED", "FAILED")
    assert interrupted.data.tags["gansweep.state"] == "interrupted" and "gansweep.outcome" not in interrupted.data.tags
    assert failed.data.tags["gansweep.error"] == "ValueError: x"
    assert said == [
        (
            "warning",
            {
                "message": f"ended 2 run(s) an earlier run could not end: {', '.join(sorted(r[:8] for r in runs.values()))}"
            },
        )
    ]
