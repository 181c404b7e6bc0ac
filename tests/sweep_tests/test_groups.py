"""A sweep's groups: which queued points a worker claims together and how many, each still its own trial
(claimed once, its own MLflow run), and a group's worker SIGKILLed: every member resumes once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gansweep.cli import main
from gansweep.config import load_config, plan_trials
from gansweep.sweep import SweepSettings, open_study
from gansweep.sweep._groups import GroupSizes
from gansweep.sweep._queue import claim_more, claim_waiting, enqueue_missing, shape_of
from gansweep.sweep._record import TrialRecord

GRID = """
name: groups
epochs: 2
device: cpu
models:
  - model: cs231n-mlp
    batch_size: 500
    grid:
      lr: [1.0e-3, 5.0e-4, 2.0e-4]
  - model: cs231n-mlp
    batch_size: 250
    points:
      - {lr: 1.0e-3}
"""


def _settings(tmp_path: Path, text: str = GRID) -> SweepSettings:
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    return SweepSettings(load_config(grid), "", "groups", tmp_path / "mlruns")


def test_a_worker_claims_points_of_one_shape_together_each_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    study = open_study(settings)
    enqueue_missing(study, plan_trials(settings.config), 0, retry_failed=False)
    first = claim_waiting(study, "w:1 cpu")
    assert first is not None
    more = claim_more(study, first, 8, "w:1 cpu")  # the batch-250 point has another shape
    assert [t.number for t in more] == [1, 2]
    assert claim_more(study, first, 8, "w:2 cpu") == []  # each claimed once
    states = Counter(t.state.name for t in study.trials)
    assert states == {"RUNNING": 3, "WAITING": 1}
    last = claim_waiting(study, "w:2 cpu")
    assert last is not None and claim_more(study, last, 8) == []


def test_auto_measures_a_shape_once_and_only_where_two_of_it_wait(tmp_path: Path, monkeypatch, digits) -> None:
    settings = _settings(tmp_path)
    study = open_study(settings)
    enqueue_missing(study, plan_trials(settings.config), 0, retry_failed=False)
    measured: list[int] = []

    def choose(make, largest):
        measured.append(largest)
        return 2, {1: 100.0, 2: 180.0}

    monkeypatch.setattr("gansweep.sweep._groups.choose_group_size", choose)
    said: list[str] = []
    sizes = GroupSizes("auto", "cpu", digits, said.append)
    sizes.measure_next(study)
    sizes.measure_next(study)
    assert measured == [3] and said == [
        "groups of cs231n-mlp batch 500: measured 1 alone 100 img/s, 2 fused 180 img/s: trains 2 at a time"
    ]
    records = [TrialRecord.of(t) for t in study.trials]
    assert [sizes.size(r) for r in records] == [2, 2, 2, 1]  # the batch-250 point: never measured, alone
    for _ in range(3):
        claim_waiting(study)
    sizes.measure_next(study)  # one point of its shape waits: nothing to group it with
    assert measured == [3]
    assert GroupSizes(4, "cpu", digits, said.append).size(records[3]) == 4
    assert shape_of(TrialRecord(number=9, state=records[0].state, search_slot=0)) is None  # sampled when claimed


def test_grouped_runs_are_solo_runs_but_for_their_tag(tmp_path: Path) -> None:
    """One sweep trained with --group-size 3 and again with --group-size 1: the same runs, params, metrics
    and files. The metrics within the float32 drift of a fused step (tests/test_group.py), which Adam
    carries on over the epoch's 9 steps: measured at most 4e-5 relative here."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID.replace("epochs: 2", "epochs: 1"))
    runs = {}
    for size in ("3", "1"):
        store = tmp_path / f"store{size}"
        assert main(["run", str(grid), "--store", str(store), "--workers", "1", "--group-size", size]) == 0
        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("groups").experiment_id
        found = client.search_runs([experiment], "tags.`gansweep.role` = 'trial'")
        runs[size] = (client, {run.data.tags["gansweep.key"]: run for run in found})
    (grouped_client, grouped), (solo_client, solo) = runs["3"], runs["1"]
    assert sorted(grouped) == sorted(solo) and all(r.info.status == "FINISHED" for r in grouped.values())
    tags = Counter(run.data.tags.get("gansweep.group") for run in grouped.values())
    assert sorted(tags.values()) == [1, 3] and None in tags  # the batch-250 point trained alone
    assert not any("gansweep.group" in run.data.tags for run in solo.values())
    for key, run in grouped.items():
        alone = solo[key]
        assert run.data.params == alone.data.params
        assert set(run.data.metrics) == set(alone.data.metrics)
        for name in ("d_loss", "g_loss", "d_real", "fid_mnist"):
            assert run.data.metrics[name] == pytest.approx(alone.data.metrics[name], rel=1e-3), name
        skip = {"gansweep.group", "gansweep.worker", "gansweep.optuna_trial", "mlflow.runName"}
        assert {k for k in run.data.tags if k not in skip} == {k for k in alone.data.tags if k not in skip}
        files = [f.path for f in grouped_client.list_artifacts(run.info.run_id)]
        assert files == [f.path for f in solo_client.list_artifacts(alone.info.run_id)]


KILL_GRID = """
name: groupkill
epochs: 4
device: cpu
models:
  - model: cs231n-mlp
    batch_size: 100
    grid:
      lr: [1.0e-3, 5.0e-4, 2.0e-4, 1.0e-4]
"""


def _group_victim(study) -> tuple[int, set[str]]:
    """(pid, keys) of a worker holding a group whose members all have an epoch checkpoint recorded, none
    near its end; (0, set()) while there is none."""
    held: dict[int, list] = {}
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name == "RUNNING":
            pid = int(trial.user_attrs["worker"].split(" ")[0].split(":")[1])
            held.setdefault(pid, []).append(trial.user_attrs)
    for pid, members in held.items():
        if len(members) >= 2 and all(m.get("checkpoint_run") and 1 <= m.get("epoch", 0) <= 2 for m in members):
            return pid, {m["gansweep_key"] for m in members}
    return 0, set()


@pytest.mark.slow
def test_a_groups_worker_killed_every_member_resumes_once(tmp_path: Path, kill_worker) -> None:
    grid, store = tmp_path / "grid.yaml", tmp_path / "mlruns"
    grid.write_text(KILL_GRID)
    settings = SweepSettings(load_config(grid), "", "groupkill", store)
    command = [sys.executable, "-m", "gansweep.cli", "run", str(grid), "--store", str(store), "--workers", "2"]
    proc = subprocess.Popen([*command, "--group-size", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = kill_worker(settings, _group_victim)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"died (exit code -9); {len(killed)} trial(s) queued again" in err
    assert "4/4 trials complete" in out

    keys = {p.key for p in plan_trials(settings.config)}
    trials = open_study(settings, create=False).get_trials(deepcopy=False)
    assert Counter(t.user_attrs["gansweep_key"] for t in trials if t.state.name == "COMPLETE") == Counter(keys)
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("groupkill").experiment_id], "tags.`gansweep.role` = 'trial'"
    )
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert Counter(r.data.tags["gansweep.key"] for r in finished) == Counter(keys)  # exactly one each
    assert {r.data.tags["gansweep.key"] for r in runs if r.info.status == "KILLED"} == killed
    for run in finished:  # every member resumed from its own checkpoint; the others from the start
        resumed = int(run.data.tags["gansweep.resumed_from_epoch"])
        assert resumed >= 1 if run.data.tags["gansweep.key"] in killed else resumed == 0
    assert not [r for r in runs if r.info.status == "RUNNING"]
