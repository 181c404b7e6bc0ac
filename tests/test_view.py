"""The sweep as MLflow's UI shows it: run names, the shared view's state as MLflow 3.17 reads it, and, in a
real headless Chromium, the page `gansweep ui` prints: every trial listed, its curves drawn, no click."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gansweep.cli import main
from gansweep.config import load_config, plan_trials
from gansweep.view import TAG, compare_view, run_names, sweep_page, varying

ROOT = Path(__file__).resolve().parent.parent
QUERY = "viewStateShareKey=gansweep&compareRunsMode=CHART&workflowType=machine_learning"
SWEEPS = ROOT / "sweeps"


def _browser_module():
    spec = importlib.util.spec_from_file_location("browser", ROOT / "scripts" / "browser.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


browser = _browser_module()


def test_run_names_say_what_varies_in_few_characters() -> None:
    plans = plan_trials(load_config(SWEEPS / "quickstart.yaml"))
    assert list(run_names(plans).values()) == [
        "lr 2e-4 · batch 64",
        "lr 2e-4 · batch 256",
        "lr 5e-3 · batch 64",
        "lr 5e-3 · batch 256",
    ]
    for grid in SWEEPS.glob("*.yaml"):
        names = list(run_names(plan_trials(load_config(grid))).values())
        assert len(set(names)) == len(names), grid  # every trial told apart
        assert all(len(name) <= 33 for name in names), grid  # MLflow's chart view cuts past ~30 characters


def test_names_of_sweeps_of_several_models_start_with_the_model() -> None:
    plans = plan_trials(load_config(SWEEPS / "cs231n.yaml"))
    assert varying(plans) == ["model", "loss"]
    assert list(run_names(plans).values())[0] == "cs231n-mlp · loss bce"


def test_the_view_is_an_envelope_the_ui_accepts(tmp_path: Path) -> None:
    """What MLflow 3.17's UI checks before it restores a view (its saved-view envelope: a string name, a
    number createdAt, a string state holding JSON), and the state's parts gansweep relies on."""
    grid = tmp_path / "g.yaml"
    grid.write_text(
        "name: v\nepochs: 1\ndevice: cpu\nmodels: [{model: cs231n-mlp, batch_size: 500, grid: {lr: [1e-3, 2e-4]}}]\n"
    )
    assert main(["run", str(grid), "--store", str(tmp_path / "mlruns")]) == 0
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    envelope = json.loads(client.get_experiment_by_name("v").tags[TAG])
    assert isinstance(envelope["name"], str) and isinstance(envelope["createdAt"], int)
    state = json.loads(envelope["state"])
    assert state == compare_view(["lr"], trials=2, epochs=1)
    assert state["selectedColumns"] == ["params.`lr`", "tags.`gansweep.outcome`", "metrics.`fid_mnist`"]
    assert [c.get("metricKey") or c["imageKeys"][0] for c in state["compareRunCharts"]] == [
        "d_loss",
        "g_loss",
        "fid_mnist",
        "samples",
    ]
    trial = client.search_runs([client.get_experiment_by_name("v").experiment_id], "params.lr = '0.001'")[0]
    assert trial.info.run_name == "lr 1e-3" and trial.data.tags["mlflow.loggedImages"] == "True"
    images = {a.path for a in client.list_artifacts(trial.info.run_id, "images")}
    assert sum("samples+step+" in p and p.endswith(".png") for p in images) == 2  # epochs 0 and 1
    # A sweep recorded before sweeps kept a view: `gansweep ui` writes one from its trial runs' params.
    experiment = client.get_experiment_by_name("v").experiment_id
    client.delete_experiment_tag(experiment, TAG)
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert sweep_page(uri, "v") == f"#/experiments/{experiment}/runs?{QUERY}"
    assert json.loads(json.loads(client.get_experiment(experiment).tags[TAG])["state"]) == state


QUICKSTART_LIKE = """
name: like-quickstart
epochs: 2
seed: 0
device: cpu
models:
  - model: cs231n-mlp
    grid:
      lr: [1e-3, 2e-4]
      batch_size: [250, 500]
"""

CARDS = """Object.fromEntries(Array.from(document.querySelectorAll('[data-testid=experiment-view-compare-runs-card]'))
  .map(card => [card.innerText.split('\\n')[0], card.querySelectorAll('.scatterlayer .trace').length]))"""
ROWS = "Array.from(document.querySelectorAll('.ag-row')).map(row => row.innerText.replace(/\\s+/g, ' ').trim())"
HEADERS = "Array.from(document.querySelectorAll('.ag-header-cell')).map(cell => cell.innerText.trim())"


@pytest.fixture(scope="module")
def ui_page(tmp_path_factory):
    """A quickstart-like store (4 trials of 2 epochs) and `gansweep ui` on it: (its printed URL, the trials' names)."""
    if browser.chromium() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium): the UI is not checked in a browser")
    folder = tmp_path_factory.mktemp("ui")
    (folder / "grid.yaml").write_text(QUICKSTART_LIKE)
    assert main(["run", str(folder / "grid.yaml"), "--store", str(folder / "mlruns")]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "gansweep.cli", "ui", "--store", str(folder / "mlruns"), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = [server.stdout.readline() for _ in range(2)]
        assert lines[1].startswith("open http://"), lines
        names = list(run_names(plan_trials(load_config(folder / "grid.yaml"))).values())
        yield lines[1].split()[1], names
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_the_printed_url_opens_on_every_trials_curves_without_a_click(ui_page) -> None:
    url, names = ui_page
    with browser.Browser() as page:
        page.open(url)
        drawn = page.wait(f"(c => ['d_loss', 'g_loss', 'fid_mnist'].every(k => c[k] >= 4) && c)({CARDS})", "the curves")
        assert {"d_loss", "g_loss", "fid_mnist", "samples"} <= set(drawn)  # a line per trial (and its markers)
        rows = page.wait(f"(r => r.length >= 4 && r)({ROWS})", "the trials")
        assert all(any(row.endswith(name) for row in rows) for name in names), rows  # each trial, by what varies
        assert any(re.search(r"Group: (good|bad|unclear)\b", row) for row in rows), rows  # outcome groups


@pytest.mark.slow
def test_the_same_view_holds_the_columns_in_the_table(ui_page) -> None:
    """MLflow's chart view lists runs by name only; the view's columns are in its Table view (one toggle)."""
    url, _ = ui_page
    with browser.Browser() as page:
        page.open(url.replace("compareRunsMode=CHART", "compareRunsMode=TABLE"))
        headers = page.wait(f"(h => h.includes('fid_mnist') && h)({HEADERS})", "the columns")
        assert {"lr", "batch_size", "gansweep.outcome", "fid_mnist"} <= set(headers), headers
