"""A worker SIGKILLed in the middle of a trial: the others take its trial over and resume it.

Both forms a user runs: ``--workers 2`` on the default store (the run watches its worker processes),
and two `gansweep run` processes sharing PostgreSQL and an MLflow server (heartbeats), each with its
own --store folder, as on two machines. And a worker that was only paused while another took its
trial over: it gives the trial up.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from gansweep.cli import build_parser, main
from gansweep.commands.run import _sweep_settings
from gansweep.config import load_config, plan_trials
from gansweep.sweep import SweepSettings, open_study
from gansweep.sweep._queue import claim_waiting, enqueue_missing, fail_and_requeue
from gansweep.sweep._storage import open_storage
from gansweep.sweep._worker import Worker, run_trials

GRID = """
name: takeover
epochs: 4
device: cpu
group_size: 1
models:
  - model: cs231n-mlp
    batch_size: 100
    grid:
      lr: [1.0e-3, 5.0e-4, 2.0e-4]
"""


# ``group_size: 1``: one trial per worker, so that a kill takes one trial (test_groups.py kills a group).


def _start(grid: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "gansweep.cli", "run", str(grid), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _victim(study) -> tuple[int, str]:
    """(pid, key) of a worker holding a trial past its first epoch checkpoint (recorded once its upload is
    done, in the background: the epoch count runs ahead of it) but not near its end; (0, "") while there
    is none."""
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        if trial.state.name == "RUNNING" and attrs.get("checkpoint_run") and 1 <= attrs.get("epoch", 0) <= 2:
            return int(trial.user_attrs["worker"].split(" ")[0].split(":")[1]), trial.user_attrs["gansweep_key"]
    return 0, ""


def _assert_each_point_once(settings: SweepSettings, client, experiment: str, killed_key: str) -> None:
    keys = {p.key for p in plan_trials(settings.config)}
    trials = open_study(settings, create=False).get_trials(deepcopy=False)
    complete = Counter(t.user_attrs["gansweep_key"] for t in trials if t.state.name == "COMPLETE")
    assert complete == Counter(keys)  # every point COMPLETE, exactly once
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]

    runs = client.search_runs([experiment], "tags.`gansweep.role` = 'trial'")
    finished = Counter(r.data.tags["gansweep.key"] for r in runs if r.info.status == "FINISHED")
    assert finished == Counter(keys)  # exactly one FINISHED run per point, no duplicate keys
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert [r.data.tags["gansweep.key"] for r in killed] == [killed_key]
    resumed = {
        r.data.tags["gansweep.key"]: int(r.data.tags["gansweep.resumed_from_epoch"])
        for r in runs
        if r.info.status == "FINISHED"
    }
    assert resumed.pop(killed_key) >= 1 and set(resumed.values()) == {0}
    assert not [r for r in runs if r.info.status == "RUNNING"]


@pytest.mark.slow
def test_default_store_two_workers_one_killed(tmp_path: Path, kill_worker) -> None:
    from mlflow import MlflowClient

    grid, store = tmp_path / "grid.yaml", tmp_path / "mlruns"
    grid.write_text(GRID)
    settings = SweepSettings(load_config(grid), "", "takeover", store)
    proc = _start(grid, "--store", str(store), "--workers", "2")
    killed_key = kill_worker(settings, _victim)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "died (exit code -9); 1 trial(s) queued again" in err
    assert "3/3 trials complete" in out

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    _assert_each_point_once(settings, client, client.get_experiment_by_name("takeover").experiment_id, killed_key)


@pytest.mark.slow
def test_two_machines_on_postgres_and_mlflow_server_one_killed(
    tmp_path: Path, postgres_url: str, mlflow_server: str, sweep_name: str, capsys, kill_worker
) -> None:
    from mlflow import MlflowClient

    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    # The server takes no login: the credentials ride along, and must never be printed (MLflow's own
    # "View run" lines showed them).
    tracking = mlflow_server.replace("://", "://bob:HUNTER7@", 1)
    shared = ["--storage", postgres_url, "--tracking-uri", tracking, "--name", sweep_name, "--heartbeat", "1"]
    machines = [_start(grid, "--store", str(tmp_path / f"machine{i}"), *shared) for i in range(2)]
    settings = SweepSettings(load_config(grid), "", sweep_name, tmp_path, storage=postgres_url)
    killed_key = kill_worker(settings, _victim)
    results = [(m.pid, m.wait(timeout=300), m.communicate()) for m in machines]
    assert sorted(rc for _, rc, _ in results) == [-9, 0], results
    survivor_err = next(err for _, rc, (_, err) in results if rc == 0)
    assert "Traceback" not in survivor_err
    assert not [out for _, _, pair in results for out in pair if "HUNTER7" in out]

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(sweep_name).experiment_id
    _assert_each_point_once(settings, client, experiment, killed_key)
    password = postgres_url.split("://", 1)[1].split("@")[0].split(":")[1]
    for run in client.search_runs([experiment]):  # credentials never become params or tags
        assert password not in repr(run.data.params) + repr(run.data.tags)

    assert main(["status", str(grid), "--storage", postgres_url, "--name", sweep_name]) == 0
    assert "3 complete, 0 running, 0 failed, 0 waiting" in capsys.readouterr().out


def test_heartbeat_defaults_to_15_seconds_in_the_storage(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    args = build_parser().parse_args(["run", str(grid), "--storage", f"sqlite:///{tmp_path / 'optuna.db'}"])
    storage = open_storage(_sweep_settings(args))
    assert storage.get_heartbeat_interval() == 15 and storage.grace_period == 4 * 15


def test_a_worker_that_comes_back_after_a_takeover_stops_and_ends_its_run_killed(tmp_path: Path, wait_for) -> None:
    """A worker that was only paused (a frozen machine, a cut network) while another judged it dead."""
    from mlflow import MlflowClient

    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID.replace("epochs: 4", "epochs: 10").replace("batch_size: 100", "batch_size: 500"))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    settings = SweepSettings(load_config(grid), "", "takeover", tmp_path / "mlruns", storage=storage, heartbeat=1)
    study = open_study(settings)
    enqueue_missing(study, plan_trials(settings.config)[:1], 0, retry_failed=False)
    events: list = []
    worker = Worker.open(settings, "cpu", events.append)
    training = threading.Thread(target=run_trials, args=(worker, [claim_waiting(worker.study, "paused:1 cpu")]))
    training.start()
    wait_for(lambda: study.trials[0].user_attrs.get("epoch", 0) >= 1, every=0.1)
    held = study.trials[0]
    assert fail_and_requeue(study, held)  # what the worker that noticed the silence does
    training.join()

    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]  # untouched by the worker that came back
    assert [e["state"] for kind, e in events if kind == "end"] == ["taken over"]
    client = MlflowClient(settings.mlflow_uri)
    run = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED" and run.data.tags["gansweep.state"] == "taken over by another worker"
    # its next epoch, or the one after if it had finished that one before the takeover was written
    assert len(client.get_metric_history(run.info.run_id, "d_loss")) <= held.user_attrs["epoch"] + 2 < 10
