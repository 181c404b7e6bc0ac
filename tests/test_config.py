from __future__ import annotations

import json
from pathlib import Path

import pytest

from gansweep.cli import main
from gansweep.config import ConfigError, load_config, plan_trials

SWEEPS = Path(__file__).parent.parent / "sweeps"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_grid_and_points_expand_in_file_order_with_stable_keys(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
epochs: 3
seeds: [0, 1]
loss: lsgan
models:
  - model: dcgan28
    width: 16
    grid: {lr: [2e-4, 1e-3], batch_size: [64, 128]}
    points:
      - {lr: 2e-4, batch_size: 64, reported: "same as the first grid row"}
      - {lr: 5e-5, batch_size: 512, reported: "Good"}
""",
    )
    plans = plan_trials(load_config(path))
    assert [(p.hp.lr_g, p.hp.batch_size, p.seed) for p in plans[:4]] == [
        (2e-4, 64, 0),
        (2e-4, 64, 1),
        (2e-4, 128, 0),
        (2e-4, 128, 1),
    ]
    assert len(plans) == 2 * (4 + 1)  # the repeated point is one trial, and it keeps the report's text
    assert plans[0].reported == "same as the first grid row" and plans[-1].reported == "Good"
    assert all(p.hp.loss == "lsgan" and p.hp.width == 16 and p.hp.epochs == 3 for p in plans)
    assert len({p.key for p in plans}) == len(plans)
    # the key is how a store finds a point's trial: a new format would orphan every stored sweep
    assert plans[0].key == (
        "mnist-5k:dcgan28:batch_size=64,beta1=0.5,beta2=0.999,d_steps=1,epochs=3,latent_dim=100,"
        "loss=lsgan,lr_d=0.0002,lr_g=0.0002,width=16:seed=0"
    )
    assert load_config(path).name == "grid"  # default name: the file's stem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: 2\nmodels:\n  - model: mlp\n    grid: {lr: [1e-3\n", r"grid.yaml:\d+: not valid YAML"),
        (
            "epochs: 2\nmodels:\n  - model: mlp\n    grid: {lr: [1e-3]}\n    colour: red\n",
            r"grid.yaml:5: models\[0\].colour: Extra inputs are not permitted; allowed here: .*model, grid, points",
        ),
        (
            "epochs: 2\nlearning_rate: 1\nmodels:\n  - model: mlp\n    grid: {lr: [1e-3]}\n",
            r"grid.yaml:2: learning_rate: Extra inputs are not permitted",
        ),
        (
            "epochs: two\nmodels:\n  - model: mlp\n    grid: {lr: [1e-3]}\n",
            r"grid.yaml:1: epochs: Input should be a valid integer",
        ),
        (
            "epochs: 2\nmodels:\n  - model: mlp\n    batch_size: [1, 2]\n    grid: {lr: [1e-3]}\n",
            r"grid.yaml:4: models\[0\].batch_size: Input should be a valid integer",
        ),
        ("epochs: 2\nmodels:\n  - model: mlp\n", r"grid.yaml:3: models\[0\]: empty grid"),
        (
            "epochs: 2\nmodels:\n  - model: mlp\n    grid: {lr: []}\n",
            r"grid.yaml:4: models\[0\].grid: grid axis 'lr' has no values",
        ),
        (
            "epochs: 2\nmodels: []\n",
            r"grid.yaml:1: nothing to run: give `models:` \(grids and points\) and/or `search:`",
        ),
        (
            "epochs: 2\nsearch: {model: mlp, n_trials: 2, space: {lr: {low: 1e-4}}}\n",
            r"grid.yaml:2: search.space.lr: give `low` <= `high`",
        ),
        (
            "epochs: 2\nsearch: {model: mlp, n_trials: 2, space: {width: {low: 8, high: 64}}}\n",
            r"grid.yaml:2: search: model 'mlp' does not take hyperparameter 'width'",
        ),
        (
            "epochs: 2\nobjective: {metric: fid}\nsearch: {model: mlp, n_trials: 2, space: {lr: {low: 1e-4, high: 1e-2}}}\n",
            r"grid.yaml:2: objective.metric: unknown metric 'fid'",
        ),
        (
            "epochs: 2\nsearch: {model: mlp, n_trials: 2, sampler: cmaes, space: {lr: {low: 1e-4, high: 1e-2}}}\n",
            r"grid.yaml:2: search.sampler: Input should be 'tpe' or 'random'",
        ),
        (
            "epochs: 2\nmodels:\n  - model: stylegan\n    grid: {lr: [1e-3]}\n",
            r"grid.yaml:3: models\[0\].model: unknown model 'stylegan'; choose one of: mlp",
        ),
        (
            "epochs: 2\nmodels:\n  - model: mlp\n    grid: {width: [8]}\n",
            r"grid.yaml:4: models\[0\]: model 'mlp' does not take hyperparameter 'width'",
        ),
        (
            "epochs: 2\ndataset: cifar10\nmodels:\n  - model: mlp\n    grid: {lr: [1e-3]}\n",
            r"grid.yaml:2: dataset: unknown dataset 'cifar10'",
        ),
        (
            "epochs: 2\nmodels:\n  - model: mlp\n    grid: {lr: [-1]}\n",
            r"models\[0\] \(mlp\) \{\"lr\": -1\}: lr must be > 0",
        ),
        ("epochs: 2\nmodels:\n  - model: mlp\n    grid: {batch_size: [9000]}\n", r"batch_size must be at most 4500"),
        ("- just\n- a list\n", r"grid.yaml: expected a mapping"),
        (  # what a search trial would sample, checked at load: its fixed values, ...
            "epochs: 2\nsearch: {model: mlp, n_trials: 2, lr: 1.0e40, space: {batch_size: {low: 32, high: 64}}}\n",
            r"grid.yaml:2: search: lr must be at most 1e\+30",
        ),
        (  # ... a range of whole numbers given as decimals (Optuna would sample fractions) ...
            "epochs: 2\nsearch: {model: dcgan28, n_trials: 2, space: {width: {low: 16.0, high: 64.0}}}\n",
            r"grid.yaml:2: search.space.width: whole numbers only",
        ),
        (  # ... and each choice, against the training split too
            "epochs: 2\nsearch: {model: mlp, n_trials: 2, space: {batch_size: {choices: [64, 9000]}}}\n",
            r"search.space.batch_size: 9000 cannot be sampled: batch_size must be at most 4500",
        ),
    ],
)
def test_bad_grid_files_name_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        plan_trials(load_config(path), n_train=4500, source=str(path))


@pytest.mark.parametrize(("name", "rows"), [("report-dcgan64", 11), ("report-dcgan28", 10), ("report-mlp", 9)])
def test_report_sweeps_list_exactly_the_report_rows(tmp_path: Path, capsys, name: str, rows: int) -> None:
    assert main(["run", str(SWEEPS / f"{name}.yaml"), "--dry-run", "--json", "--store", str(tmp_path)]) == 0
    trials = json.loads(capsys.readouterr().out)
    assert len(trials) == rows and all(t["reported"] for t in trials) and all(t["epochs"] == 40 for t in trials)
    assert {t["state"] for t in trials} == {"waiting"}
    assert not any(tmp_path.iterdir())  # a dry run creates no store


def test_dcgan64_report_rows_match_the_report_table(tmp_path: Path, capsys) -> None:
    assert main(["run", str(SWEEPS / "report-dcgan64.yaml"), "--dry-run", "--json", "--store", str(tmp_path)]) == 0
    trials = json.loads(capsys.readouterr().out)
    assert (trials[0]["lr_g"], trials[0]["batch_size"], trials[0]["latent_dim"]) == (2e-4, 512, 100)
    # the table's words, then what the report's text says of the row
    assert trials[0]["reported"].startswith("Default, bad result [prose: D loss 0 from epoch 4")
    assert (trials[2]["latent_dim"], trials[2]["reported"]) == (256, "Best")


def test_every_shipped_sweep_validates(capsys, tmp_path: Path) -> None:
    for path in sorted(SWEEPS.glob("*.yaml")):
        assert main(["run", str(path), "--dry-run", "--json", "--store", str(tmp_path)]) == 0, path
    capsys.readouterr()


def test_the_example_file_in_the_module_docstring_loads(tmp_path: Path) -> None:
    import textwrap

    import gansweep.config

    block = gansweep.config.__doc__.split("Example file::\n", 1)[1].split("\n\n", 1)[0]
    grid = tmp_path / "example.yaml"
    grid.write_text(textwrap.dedent(block))
    plans = plan_trials(load_config(grid))
    assert len(plans) == 5 and plans[-1].reported == "Default, bad result"
    assert plans[0].key.startswith("mnist-5k:dcgan28:batch_size=64,") and plans[0].key.endswith(",width=32:seed=0")


BASE = "epochs: 2\nmodels:\n  - model: mlp\n    grid: {lr: [1.0e-3]}\n"
LAUGHS = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((BASE + "# café\n").encode("latin-1"), r"grid.yaml:5: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"),
        (BASE.encode("utf-16"), r"grid.yaml:1: not UTF-8 text \(byte 0xff\)"),
        (b"[" * 20_000 + b"]" * 20_000, r"grid.yaml: not valid YAML: nested too deeply"),
        ((BASE + "#" * 1_000_001).encode(), r"grid.yaml: larger than 1,000,000 bytes"),
        (LAUGHS.encode(), r"grid.yaml: expands to more than 100,000 values \(YAML aliases\?\)"),
        (b"epochs: 1\nmodels: &a [*a]\n", r"grid.yaml: an alias refers to a value that contains it"),
        (b"epochs: 2\n" + BASE.encode(), r"grid.yaml:2: epochs: given twice \(first on line 1\); give each key once"),
        (
            BASE.replace("grid:", "batch_size: true\n    grid:").encode(),
            r"grid.yaml:4: models\[0\].batch_size: 'true' is a yes/no",
        ),
        (BASE.replace("[1.0e-3]", "[yes]").encode(), r"grid.yaml:4: models\[0\].grid.lr\[0\]: 'yes' is a yes/no"),
        (
            (BASE + '    points: [{lr: 2.0e-3, reported: "\\x1b[31mred"}]\n').encode(),
            r"grid.yaml:5: models\[0\].points: reported of row 0: control character '\\x1b'; write plain text",
        ),
        (
            BASE.replace("[1.0e-3]", str(list(range(1, 12))))
            .replace("lr:", "latent_dim:")
            .replace(
                "}",
                ", d_steps: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], lr: [1.0e-3, 2.0e-3, 3.0e-3, 4.0e-3, 5.0e-3, 6.0e-3, 7.0e-3, 8.0e-3, 9.0e-3, 1.0e-2]}",
            )
            .encode(),
            r"grid.yaml:1: this file plans 1,100 trials, more than max_trials \(1,000\)",
        ),
        (
            b"epochs: 1\nsearch: {model: mlp, n_trials: 1000000000, space: {lr: {low: 1.0e-4, high: 1.0e-2}}}\n",
            r"plans 1,000,000,000 trials, more than max_trials \(1,000\); shrink the grid, or raise max_trials",
        ),
        (
            (BASE + "eval_samples: 1000000000\n").encode(),
            r"grid.yaml:5: eval_samples: Input should be less than or equal to 10000",
        ),
        (
            (BASE + "seed: 100000000000000000000\n").encode(),
            r"grid.yaml:5: seed: Input should be less than or equal to 4294967295",
        ),
        ((BASE + "seeds: [0, -1]\n").encode(), r"grid.yaml:5: seeds\[1\]: Input should be greater than or equal to 0"),
        (
            BASE.replace("epochs: 2", "epochs: " + "9" * 300).encode(),
            r"grid.yaml:1: epochs: Input should be less than or equal to 10000",
        ),
        (
            BASE.replace("1.0e-3", "1.0e+308").encode(),
            r"lr must be at most 1e\+30 \(float32 on the device\), got 1e\+308",
        ),
    ],
)
def test_hostile_grid_files_get_one_clear_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "grid.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=message):
        plan_trials(load_config(path), n_train=4500, source=str(path))


def test_what_the_hostile_checks_still_let_through(tmp_path: Path) -> None:
    """A BOM, yes/no where it belongs, a multi-line `reported:`, and max_trials raised for a big grid."""
    text = "\ufeff" + BASE.replace("grid:", 'points: [{lr: 2.0e-3, reported: "Good,\\n  then | bad"}]\n    grid:')
    text += "amp: true\nmax_trials: 1200\nseeds: [0, 1, 2]\n"
    text = text.replace("[1.0e-3]", str([round(1e-4 * i, 6) for i in range(1, 400)]))
    plans = plan_trials(load_config(_write(tmp_path, text)), n_train=4500)
    assert len(plans) == 1197  # 1,200 planned: the point repeats the grid's lr 0.002, under each seed
    assert [p.reported for p in plans if p.reported] == ["Good, then | bad"] * 3
    search = "epochs: 1\nsearch: {model: mlp, n_trials: 3, space: {lr: {low: 1.0e-4, high: 1.0e-2, log: true}}}\n"
    assert load_config(_write(tmp_path, search)).search.space["lr"].log


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epochs=abc"], r"^--set epochs=abc: epochs: Input should be a valid integer"),
        (["colour=red"], r"^--set colour=red: colour: Extra inputs are not permitted; allowed here: lr, "),
        (["epochs=true"], r"^--set epochs=true: epochs: 'true' is a yes/no value, not a number; give a number"),
        (["dataset=cifar10"], r"^--set dataset=cifar10: dataset: unknown dataset 'cifar10'; choose one of: mnist-5k"),
        (["objective.metric=nope"], r"^--set objective.metric=nope: objective.metric: unknown metric 'nope'"),
        (["epochs"], r"^--set epochs: give FIELD=VALUE, a field of the grid file, e.g. --set epochs=2$"),
        (["epochs=[1"], r"^--set epochs=\[1: not valid YAML: expected ',' or '\]'"),
        (["name=../x"], r"^--set name=../x: name: '../x' cannot name a sweep"),
        (["device=cpu", "epochs=0"], r"^--set epochs=0: epochs: Input should be greater than or equal to 1$"),
    ],
)
def test_a_set_is_checked_as_the_file_is_and_named_in_its_error(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(SWEEPS / "quickstart.yaml", overrides)


def test_set_overrides_the_files_fields_and_the_sweep_records_it(tmp_path: Path, capsys) -> None:
    config = load_config(SWEEPS / "report-dcgan64.yaml", ["epochs=2", "dataset=mnist-5k", "objective.metric=d_gap"])
    assert (config.epochs, config.dataset, config.objective.metric) == (2, "mnist-5k", "d_gap")
    command = ["run", str(SWEEPS / "quickstart.yaml"), "--set", "epochs=1", "--dry-run", "--json"]
    assert main([*command, "--store", str(tmp_path)]) == 0
    assert {row["epochs"] for row in json.loads(capsys.readouterr().out)} == {1}
    assert main(["status", "quickstart", "--set", "epochs=1", "--store", str(tmp_path)]) == 2
    assert "--set changes a grid file's fields; 'quickstart' names a sweep" in capsys.readouterr().err


def test_dry_run_rows_that_differ_only_in_loss_look_different(tmp_path: Path, capsys) -> None:
    grid = tmp_path / "losses.yaml"
    grid.write_text("epochs: 2\ndevice: cpu\nmodels: [{model: cs231n-mlp, grid: {loss: [bce, lsgan, minimax]}}]\n")
    assert main(["run", str(grid), "--dry-run", "--store", str(tmp_path / "mlruns")]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [row.split("│")[2].strip() for row in rows] == ["bce", "lsgan", "minimax"]  # the column that varies
    assert out.startswith("All trials: model cs231n-mlp, lr 1e-3, batch_size 128, latent_dim 96, epochs 2,")


def test_each_shipped_sweep_says_what_it_needs_and_how_long_it_takes() -> None:
    for grid in SWEEPS.glob("*.yaml"):
        first = grid.read_text().splitlines()[0]
        assert first.startswith("# Needs: ") and " Takes: " in first, grid
        needs_mnist = load_config(grid).dataset == "mnist"
        assert ("full MNIST (gansweep data mnist)" in first) == needs_mnist, grid
