from __future__ import annotations

import json
from pathlib import Path

import pytest

from gansweep.cli import main
from gansweep.report import reported_category

GRID = """
name: tiny
epochs: 1
device: cpu
models:
  - model: cs231n-mlp
    batch_size: 500
    points:
{points}
"""
ROWS = [
    '      - {lr: 1.0e-3, reported: "Good"}',
    '      - {lr: 2.0e-2, reported: "Bad, mode collapse"}',
    '      - {lr: 5.0e-4, reported: "Similar to default"}',
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, Path]:
    """A store where the first two points were trained; the grid has since grown a third."""
    folder = tmp_path_factory.mktemp("report")
    grid, store = folder / "tiny.yaml", folder / "mlruns"
    grid.write_text(GRID.format(points="\n".join(ROWS[:2])))
    assert main(["run", str(grid), "--store", str(store)]) == 0
    grid.write_text(GRID.format(points="\n".join(ROWS)))
    return grid, store


def _runs(store: Path) -> dict[float, object]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    runs = client.search_runs([experiment], "tags.`gansweep.role` = 'trial'")
    return {float(r.data.params["lr_g"]): r for r in runs}


def test_json_rows_follow_the_grid_and_match_the_store(store, capsys) -> None:
    grid, folder = store
    capsys.readouterr()
    assert main(["report", str(grid), "--store", str(folder), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["lr_g"] for r in rows] == [1e-3, 2e-2, 5e-4]
    assert [r["state"] for r in rows] == ["complete", "complete", "waiting"]
    runs = _runs(folder)
    for row in rows[:2]:
        run = runs[row["lr_g"]]
        assert row["run_id"] == run.info.run_id
        assert row["fid_mnist"] == pytest.approx(run.data.metrics["fid_mnist"])
        assert row["outcome"] == run.data.tags["gansweep.verdict"]
    assert sum(r["best"] for r in rows) == 1
    best = min(rows[:2], key=lambda r: r["fid_mnist"])
    assert best["best"] and rows[2]["outcome"] == "waiting" and rows[2]["reported"] == "Similar to default"


def test_markdown_has_the_reports_shape_and_an_agreement_line(store, capsys) -> None:
    grid, folder = store
    capsys.readouterr()
    assert main(["report", str(grid), "--store", str(folder)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == "### cs231n-mlp"
    assert lines[2].startswith("| lr | batch_size | latent_dim | seed | outcome | reported | fid_mnist | modes |")
    assert lines[4].startswith("| 0.001 | 500 | 96 | 0 |") and lines[6].startswith("| 0.0005 | 500 | 96 | 0 | waiting | Similar to default |")
    assert "**best**" in text
    assert "comparable rows" in text  # 2 complete rows with a good/bad report, the third is "neither"


def test_by_experiment_name_csv_and_heatmap_file(store, tmp_path: Path, capsys) -> None:
    _, folder = store
    out = tmp_path / "r" / "tiny.csv"
    assert main(["report", "tiny", "--store", str(folder), "--format", "csv", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("model,lr_g,lr_d,batch_size") and len(lines) == 3  # by name: only trained rows
    assert (out.parent / "heatmap-cs231n-mlp-z96.png").stat().st_size > 1000


def test_unknown_sweep_name(store, capsys) -> None:
    _, folder = store
    assert main(["report", "nope", "--store", str(folder)]) == 2
    assert "no sweep named 'nope'" in capsys.readouterr().err


def test_the_parent_run_holds_the_report(store) -> None:
    from mlflow import MlflowClient

    _, folder = store
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    parent = client.search_runs([experiment], "tags.`gansweep.role` = 'sweep'")[0]
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} >= {"report/report.md", "report/heatmap-cs231n-mlp-z96.png"}


@pytest.mark.parametrize(
    ("text", "category"),
    [("Best", "good"), ("Good; loss drops, then nearly converges", "good"), ("Default, bad result", "bad"),
     ("Quite good, but suddenly unstable at 17 ~ 27 epochs", "bad"), ("Mode collapse, bad after 9 epochs", "bad"),
     ("Similar to default but faster", None), (None, None)],
)  # fmt: skip
def test_reported_text_is_read_by_keyword(text, category) -> None:
    assert reported_category(text) == category
