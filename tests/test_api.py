"""The README's notebook example runs as written, and the API returns what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import gansweep
from gansweep.cli import main
from tests.test_bad_input import recorded  # noqa: F401  (the store fixture, by name)

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_readme_notebook_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    example = re.search(r"## From Python \(notebooks\).*?```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)
    table, sweep = scope["table"], scope["sweep"]
    assert list(table.state) == ["complete", "complete"] and sorted(table.lr_g) == [2e-4, 1e-3]
    assert table.hyperparameters[0]["batch_size"] == 500
    assert isinstance(scope["samples"], Figure) and isinstance(scope["losses"], Figure)
    assert list(sweep.trials().state) == ["complete", "complete"]
    again = gansweep.report("notebook", store="mlruns")
    assert list(again.run_id) == list(table.run_id)
    assert gansweep.run(scope["grid"], store="mlruns", progress=False).result.trained == 0  # nothing missing


def test_a_bad_grid_dict_names_the_field() -> None:
    with pytest.raises(gansweep.api.GansweepError, match=r"models\[0\]\.model: unknown model 'gan9'"):
        gansweep.run({"epochs": 1, "models": [{"model": "gan9", "grid": {"lr": [1e-3]}}]})


def test_a_dict_grid_named_like_a_path_is_refused_without_writing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    grid = {"name": "../outside", "epochs": 1, "models": [{"model": "mlp", "grid": {"lr": [1e-3]}}]}
    with pytest.raises(gansweep.api.GansweepError, match="cannot name a sweep"):
        gansweep.run(grid)
    assert not list(tmp_path.parent.glob("outside*")) and not list(tmp_path.iterdir())


@pytest.mark.parametrize("workers", [True, "2", 2.5, 0])
def test_workers_must_be_a_whole_number_or_auto(workers) -> None:
    with pytest.raises(gansweep.api.GansweepError, match="--workers must be a whole number >= 1 or auto"):
        gansweep.run({"epochs": 1, "models": [{"model": "mlp", "grid": {"lr": [1e-3]}}]}, workers=workers)


def test_an_unknown_option_names_the_ones_run_takes() -> None:
    with pytest.raises(gansweep.api.GansweepError, match="unknown option worker; it takes: name, store, storage"):
        gansweep.run({"epochs": 1, "models": [{"model": "mlp", "grid": {"lr": [1e-3]}}]}, worker=2)


def test_the_report_frame_speaks_the_tables_words(recorded: Path, capsys) -> None:  # noqa: F811
    """outcome is good, bad or unclear (the verdict's text is in verdict), and samples the judge could not
    read have no fid_mnist (NaN: the column holds numbers) beside how much of them it read, as the
    command's table says."""
    frame = gansweep.report("e", store=recorded)
    assert list(frame.outcome) == ["unclear"] and list(frame.verdict) == ["too early to tell at epoch 2"]
    assert frame.fid_mnist.isna().all() and frame.fid_mnist.dtype == float and list(frame.readable) == [0.0]
    assert main(["report", "e", "--store", str(recorded)]) == 0
    assert "| unclear | too early to tell at epoch 2 |  | 0.00 |" in capsys.readouterr().out
