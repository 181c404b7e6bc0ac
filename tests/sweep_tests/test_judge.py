"""One judge per sweep (``sweep/_judge.py``): every trial of a sweep is scored by the judge its parent
run records, a worker with another judge refuses before it trains, and the report keeps rows of
another judge apart."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from gansweep.cli import main
from gansweep.config import load_config
from gansweep.diagnostics import load_judge
from gansweep.errors import GansweepError
from gansweep.sweep import SweepSettings, TrialRecord
from gansweep.sweep._judge import JUDGE_ATTR, sweep_judge
from gansweep.tracking import Tracker

GRID = """
name: judged
epochs: 1
device: cpu
models:
  - model: cs231n-mlp
    batch_size: 500
    points: [{points}]
"""


def _study(store: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(store / "optuna.journal")))
    return optuna.load_study(study_name="judged", storage=storage)


def _runs(store: Path) -> tuple[object, list]:
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("judged").experiment_id
    parent = client.search_runs([experiment], "tags.`gansweep.role` = 'sweep'")[0]
    return parent, client.search_runs([experiment], "tags.`gansweep.role` = 'trial'")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A sweep of two points trained by two worker processes."""
    folder = tmp_path_factory.mktemp("judged")
    (folder / "grid.yaml").write_text(GRID.format(points="{lr: 1.0e-3}, {lr: 2.0e-3}"))
    assert main(["run", str(folder / "grid.yaml"), "--store", str(folder / "mlruns"), "--workers", "2"]) == 0
    return folder


def test_every_trial_of_a_sweep_carries_the_judge_its_parent_run_records(store: Path, digits) -> None:
    judge = load_judge(digits)
    record = _study(store / "mlruns").user_attrs[JUDGE_ATTR]
    assert record == {"name": judge.name, "sha256": judge.sha256, "accuracy": round(judge.accuracy, 5)}
    parent, trials = _runs(store / "mlruns")
    assert (
        parent.data.tags["gansweep.judge"] == judge.name and parent.data.tags["gansweep.judge.sha256"] == judge.sha256
    )
    assert len(trials) == 2 and {run.data.tags["gansweep.judge"] for run in trials} == {judge.name}
    records = [TrialRecord.of(t) for t in _study(store / "mlruns").trials]
    assert [r.judge for r in records] == [judge.name, judge.name]
    artifacts = MlflowClient(f"sqlite:///{store / 'mlruns' / 'mlflow.db'}").list_artifacts(parent.info.run_id, "judge")
    assert [a.path for a in artifacts] == ["judge/judge-mnist-5k-v4.pt"]  # the sweep's judge, kept with it


def test_a_sweep_whose_judge_is_not_the_shipped_one_is_refused_before_any_work(store: Path, capsys, digits) -> None:
    study = _study(store / "mlruns")
    kept = study.user_attrs[JUDGE_ATTR]
    study.set_user_attr(JUDGE_ATTR, kept | {"name": "mnist-5k/v4/000000000000", "sha256": "0" * 64})
    try:
        (store / "grid.yaml").write_text(GRID.format(points="{lr: 1.0e-3}, {lr: 2.0e-3}, {lr: 5.0e-3}"))
        capsys.readouterr()
        assert main(["run", str(store / "grid.yaml"), "--store", str(store / "mlruns")]) == 2
        [error] = capsys.readouterr().err.strip().splitlines()  # before any work: nothing queued, no run opened
        judge = load_judge(digits)
        assert error.startswith(
            f"error: sweep 'judged' is scored by judge mnist-5k/v4/000000000000, not by {judge.name}, the judge "
            "this gansweep ships: metrics of two judges cannot be compared. Finish it with a gansweep whose shipped "
            "judge is mnist-5k/v4/000000000000 (gansweep list datasets names it), or start a new sweep with --name"
        )
        parent, trials = _runs(store / "mlruns")
        assert len(trials) == 2 and parent.info.status == "FINISHED"  # no run started, the sweep's not reopened
    finally:
        study.set_user_attr(JUDGE_ATTR, kept)
        (store / "grid.yaml").write_text(GRID.format(points="{lr: 1.0e-3}, {lr: 2.0e-3}"))


def test_a_worker_whose_judge_is_not_the_sweeps_refuses_before_it_trains(store: Path, digits) -> None:
    """The worker's own check (a data set whose judge is trained, or a sweep joined from another machine,
    meets it there): one line, with the way out for its kind of judge."""
    config = load_config(store / "grid.yaml")
    settings = SweepSettings(config, "", "judged", store / "mlruns")
    study = _study(store / "mlruns")
    kept = study.user_attrs[JUDGE_ATTR]
    study.set_user_attr(JUDGE_ATTR, kept | {"name": "mnist-5k/v4/000000000000", "sha256": "0" * 64})
    try:
        tracker = Tracker(settings.mlflow_uri, "judged")
        with pytest.raises(GansweepError) as refused:
            sweep_judge(settings, study, None, tracker, "", digits, "cpu", lambda line: None)
    finally:
        study.set_user_attr(JUDGE_ATTR, kept)
    assert str(refused.value).startswith(
        f"sweep 'judged' is scored by judge mnist-5k/v4/000000000000, not by {kept['name']}, the judge this gansweep "
        "ships: metrics of two judges cannot be compared. Finish it with a gansweep whose shipped judge is"
    )


def test_the_report_marks_rows_of_another_judge_and_never_ranks_them(store: Path, capsys) -> None:
    study = _study(store / "mlruns")
    kept = study.user_attrs[JUDGE_ATTR]
    study.set_user_attr(JUDGE_ATTR, kept | {"name": "mnist-5k/v4/000000000000"})  # as if a newer judge took over
    try:
        capsys.readouterr()
        assert main(["report", str(store / "grid.yaml"), "--store", str(store / "mlruns")]) == 0
        report = capsys.readouterr().out
    finally:
        study.set_user_attr(JUDGE_ATTR, kept)
    assert report.count(f"[scored by {kept['name']}]") == 2  # ranking: tests/test_tables.py
    assert "2 row(s) were scored by another judge than the sweep's" in report
    capsys.readouterr()
    assert main(["report", str(store / "grid.yaml"), "--store", str(store / "mlruns")]) == 0
    report = capsys.readouterr().out
    assert "[scored by" not in report and f"Scored by judge {kept['name']}." in report


def test_diagnose_refuses_a_run_scored_by_another_judge_of_a_shipped_data_set(store: Path, capsys) -> None:
    uri = f"sqlite:///{store / 'mlruns' / 'mlflow.db'}"
    run = _runs(store / "mlruns")[1][0]
    assert main(["diagnose", run.info.run_id, "--tracking-uri", uri]) == 0
    assert f"  scored by judge {run.data.tags['gansweep.judge']}" in capsys.readouterr().out.splitlines()
    client = MlflowClient(uri)
    client.set_tag(run.info.run_id, "gansweep.judge", "mnist-5k/v3/0123456789ab")
    try:
        assert main(["diagnose", run.info.run_id, "--tracking-uri", uri]) == 2
        error = capsys.readouterr().err
        assert "was scored by judge mnist-5k/v3/0123456789ab, and this gansweep's judge for mnist-5k is" in error
    finally:
        client.set_tag(run.info.run_id, "gansweep.judge", run.data.tags["gansweep.judge"])


def test_a_data_set_without_a_shipped_judge_is_trained_on_the_workers_device_and_recorded(
    tmp_path: Path, monkeypatch, write_idx, capsys
) -> None:
    """fashion-mnist's judge, trained on first use by a worker whose device is `auto` (small IDX stand-ins;
    1,600 digits shown, not IMAGES): the worker says what it trains, and the sweep records that judge."""
    monkeypatch.setenv("GANSWEEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("gansweep.diagnostics.judge.IMAGES", 1600)
    write_idx(tmp_path / "data" / "FashionMNIST" / "raw", n_train=200, n_test=100)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        f"name: judged\ndataset: fashion-mnist\ndata_dir: {tmp_path / 'data'}\nepochs: 1\ndevice: auto\n"
        "models: [{model: cs231n-mlp, batch_size: 100, points: [{lr: 1.0e-3}]}]\n"
    )
    assert main(["run", str(grid), "--store", str(tmp_path / "mlruns")]) == 0
    err = capsys.readouterr().err
    assert "worker 0: training the fashion-mnist judge on cpu: 8 epoch(s) of 200 digits, about " in err
    assert f"(once per machine; cached in {tmp_path / 'cache'})" in err
    record = _study(tmp_path / "mlruns").user_attrs[JUDGE_ATTR]
    assert (
        record["name"].startswith("fashion-mnist/v4/") and (tmp_path / "cache" / "judge-fashion-mnist-v4.pt").is_file()
    )
