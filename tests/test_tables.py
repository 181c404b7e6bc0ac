from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from optuna.trial import FrozenTrial, TrialState

from gansweep.cli import main
from gansweep.diagnostics.metrics import READABLE
from gansweep.tables import (
    ReportRow,
    agreement,
    collect_rows,
    heatmap_axes,
    heatmap_figure,
    heatmaps,
    saved_epochs,
    summarize,
    to_csv,
    to_json,
    to_markdown,
)

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
        if run.data.metrics["readable"] < READABLE:  # the judge read nothing: no score, and never the best
            assert row["readable"] < READABLE and row["fid_mnist"] is None and not row["best"]
        else:
            assert row["fid_mnist"] == pytest.approx(run.data.metrics["fid_mnist"])
        assert row["verdict"] == run.data.tags["gansweep.verdict"]
        assert row["outcome"] == run.data.tags["gansweep.outcome"] in ("good", "bad", "unclear")
    scored = [r for r in rows if r["fid_mnist"] is not None]
    assert [r["best"] for r in rows] == [bool(scored) and r is min(scored, key=lambda r: r["fid_mnist"]) for r in rows]
    assert rows[2]["state"] == "waiting" and rows[2]["outcome"] is None and rows[2]["reported"] == "Similar to default"


def test_markdown_has_the_reports_shape_and_an_agreement_line(store, capsys) -> None:
    grid, folder = store
    capsys.readouterr()
    assert main(["report", str(grid), "--store", str(folder)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == "### cs231n-mlp"
    assert lines[2].startswith("All rows: batch_size 500, latent_dim 96, betas 0.5, 0.999, epochs 1, loss bce,")
    header = "| lr | outcome | verdict | reported | read as | agrees | fid_mnist | readable | modes |"
    assert lines[4].startswith(header)  # only lr varies
    assert lines[6].startswith("| 0.001 | unclear | too early") and lines[8].startswith("| 0.0005 |  | _waiting_ |")
    assert lines[7].split(" | ")[3:5] == ["Bad, mode collapse", "bad; mode_collapse"]
    scores = [line.split(" | ")[6:8] for line in lines[6:8]]  # after 1 epoch the judge may read nothing yet
    assert all((fid == "" and float(readable) < READABLE) or float(fid) > 0 for fid, readable in scores)
    assert ("**best**" in text) == any(fid != "" for fid, _ in scores)
    capsys.readouterr()
    assert main(["report", str(grid), "--store", str(folder), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # one-epoch trials are "too early to tell", which is never compared: none of these rows counts
    # (the counting itself: test_agreement_is_counted_per_flag_where_both_sides_say)
    assert [r["outcome"] for r in rows] == ["unclear", "unclear", None] and [r["read_as"] for r in rows] == [
        "good; no mode_collapse; no d_collapse",
        "bad; mode_collapse",
        "neither good nor bad",  # "Similar to default": this table has no default row
    ]
    assert all(r["agrees"] == {} for r in rows)
    assert "outcome 0 of 0, mode_collapse 0 of 0, d_collapse 0 of 0, unstable 0 of 0." in text


def test_by_experiment_name_csv_and_heatmap_file(store, tmp_path: Path, capsys) -> None:
    _, folder = store
    out = tmp_path / "r" / "tiny.csv"
    assert main(["report", "tiny", "--store", str(folder), "--format", "csv", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("model,lr,seed,state,") and len(lines) == 3  # by name: only trained rows
    assert (out.parent / "heatmap-cs231n-mlp-z96.png").stat().st_size > 1000


def test_diagnose_a_run_by_id(store, capsys) -> None:
    # here, not in diagnostics_tests: it reads a run of this module's trained store
    _, folder = store
    run = _runs(folder)[1e-3]
    capsys.readouterr()
    assert main(["diagnose", run.info.run_id, "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"verdict: {run.data.tags['gansweep.verdict']}"
    flags = {k.removeprefix("gansweep.flag."): v for k, v in run.data.tags.items() if k.startswith("gansweep.flag.")}
    assert flags and all(
        any(line.startswith(f"  {name} (epoch {epoch}") for line in lines) for name, epoch in flags.items()
    )
    assert f"  fid_mnist: {run.data.metrics['fid_mnist']:.4g}" in lines


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
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} >= {
        "report/report.md",
        "report/heatmap-cs231n-mlp-z96.png",
    }


def _row(lr: float, batch_size: int = 500, state: str = "complete", seed: int = 0, **given) -> ReportRow:
    return ReportRow("cs231n-mlp", lr, lr, batch_size, 96, seed, state, key=f"{lr}:{batch_size}", **given)


def test_agreement_is_counted_per_flag_where_both_sides_say() -> None:
    default = "Default, bad result [prose: D loss 0 from epoch 4, G loss 50]"
    rows = [
        _row(1e-3, reported=default, judged="bad", flags={"d_collapse": 4}),  # outcome, d_collapse agree
        _row(2e-3, reported="Bad, similar loss curve to default", judged="bad", flags={"mode_collapse": 9}),
        _row(3e-3, reported="Best", judged="bad", flags={"mode_collapse": 7}),  # disagrees on outcome and mode_collapse
        _row(
            4e-3,
            reported="Quite good, but suddenly unstable at 17 ~ 27 epochs",
            judged="good",
            flags={"unstable": 18},
            recovered={"unstable": 25},
        ),  # a recovered episode still happened
        _row(
            5e-3,
            reported="Mode collapse, bad after 30 epochs",
            judged="good",
            flags={"mode_collapse": 12},
            recovered={"mode_collapse": 20},
        ),  # recovered: no collapse at the end
        _row(6e-3, reported="Good", judged="unclear"),  # too early to tell: not compared
        _row(7e-3, reported="Bad", state="waiting"),
        _row(8e-3, reported="Unstable, increasing generator loss", judged="bad", flags={"d_collapse": 3}),
    ]
    assert agreement(rows) == {
        "outcome": (3, 5),  # 1e-3, 2e-3, 4e-3 agree; 3e-3 and 5e-3 do not; 8e-3 says neither good nor bad
        "mode_collapse": (1, 3),  # 3e-3 and 5e-3 disagree, 4e-3 (good: none) agrees
        "d_collapse": (3, 4),  # 1e-3, and 3e-3 and 4e-3 (good: none), agree; 2e-3 (as the default) does not
        "unstable": (1, 2),  # 4e-3 agrees; 8e-3 said unstable, measured none
    }
    text = to_markdown(rows)
    assert "outcome 3 of 5, mode_collapse 1 of 3, d_collapse 3 of 4, unstable 1 of 2." in text
    assert "| bad; mode_collapse @ 30 | outcome ✗, mode_collapse ✗ |" in text  # it recovered: no collapse at the end


def test_denied_words_count_as_denied_in_the_agreement() -> None:
    rows = [
        _row(1e-3, reported="not bad, no mode collapse", judged="good"),  # mode_collapse agrees; outcome unsaid
        _row(2e-3, reported="no mode collapse", judged="bad", flags={"mode_collapse": 5}),  # disagrees
    ]
    assert agreement(rows)["outcome"] == (0, 0) and agreement(rows)["mode_collapse"] == (1, 2)


def test_heatmap_colours_by_fid_and_hatches_the_collapsed_cells() -> None:
    rows = [
        _row(1e-3, 128, fid_mnist=40.0),
        _row(1e-3, 512, fid_mnist=900.0, flags={"d_collapse": 4}),
        _row(5e-3, 128, fid_mnist=300.0, flags={"unstable": 6}),  # bad, not collapsed
        _row(2e-2, 128, fid_mnist=1200.0, flags={"mode_collapse": 3}),
        _row(2e-2, 512, fid_mnist=60.0, flags={"mode_collapse": 5}, recovered={"mode_collapse": 8}),
    ]
    figure = heatmap_figure(rows)
    ax = figure.axes[0]
    colours, hatched = ax.images[0].get_array(), sorted(p.get_xy() for p in ax.patches if p.get_hatch())
    plt.close(figure)
    assert colours.filled(-1).tolist() == [[40.0, 900.0], [300.0, -1], [1200.0, 60.0]]  # rows: lr, columns: batch
    assert hatched == [(-0.5, 1.5), (0.5, -0.5)]  # (batch 128, lr 2e-2) and (batch 512, lr 1e-3), from their corners


def _trial(number: int, lr: float, seed: int, fid: float | None, state: str = "COMPLETE", flags=None, recovered=None):
    """What ``collect_rows`` reads of an Optuna trial."""
    attrs = {
        "gansweep_key": f"mnist-5k:cs231n-mlp:batch_size=500,lr_d={lr},lr_g={lr}:seed={seed}",
        "model": "cs231n-mlp",
        "hyperparameters": {"lr_g": lr, "lr_d": lr, "batch_size": 500, "latent_dim": 96},
        "seed": seed,
        "final": {"fid_mnist": fid},
        "verdict": "good",
        "flags": flags or {},
        "recovered": recovered or {},
    }
    return FrozenTrial(
        number=number,
        state=TrialState[state],
        value=None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=attrs,
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


SEEDED = [  # A holds the lowest single fid, B the lowest median; C has a diverged (NaN fid) and a failed seed
    _trial(0, 1e-3, 0, 100.0),
    _trial(1, 1e-3, 1, 600.0, flags={"d_collapse": 3}),
    _trial(2, 1e-3, 2, 700.0, flags={"d_collapse": 2, "mode_collapse": 4}, recovered={"mode_collapse": 6}),
    _trial(3, 2e-3, 0, 300.0, flags={"mode_collapse": 5}, recovered={"mode_collapse": 7}),
    _trial(4, 2e-3, 1, 500.0),
    _trial(5, 2e-3, 2, 400.0),
    _trial(6, 5e-3, 0, math.nan, flags={"diverged": 1}),
    _trial(7, 5e-3, 1, 450.0),
    _trial(8, 5e-3, 2, None, state="FAIL"),
]


def test_summaries_count_flags_and_take_the_median_over_complete_seeds() -> None:
    a, b, c = summarize(collect_rows(SEEDED, None))
    assert (a.seeds, a.complete, a.flagged) == ([0, 1, 2], 3, {"d_collapse": 2})  # mode_collapse recovered: not counted
    assert (a.fid_median, a.fid_min, a.fid_max) == (600.0, 100.0, 700.0)
    assert (b.flagged, b.fid_median, b.fid_min, b.fid_max) == ({}, 400.0, 300.0, 500.0)
    # the diverged seed counts as the worst fid: C is not judged by its one good seed
    assert (c.complete, c.flagged, c.fid_median, c.fid_min, c.fid_max) == (
        2,
        {"diverged": 1},
        math.inf,
        450.0,
        math.inf,
    )
    assert [s.best for s in (a, b, c)] == [False, True, False]  # by median, not A's lucky seed


def test_with_seeds_no_single_row_is_best_and_without_one_is() -> None:
    assert not any(r.best for r in collect_rows(SEEDED, None))
    single = [t for t in SEEDED if t.user_attrs["seed"] == 0]
    rows = collect_rows(single, None)
    assert [r.best for r in rows] == [True, False, False] and summarize(rows) == []


def test_every_format_shows_the_summaries() -> None:
    rows = collect_rows(SEEDED, None)
    text = to_markdown(rows)
    table = text[text.index("#### per setting (median over seeds)") :].splitlines()
    assert table[2] == "| lr | seeds | fid_mnist | flags (of complete seeds) |"
    assert table[4:7] == [
        "| 0.001 | 3 | median 600 [100–700] | d_collapse 2/3 |",
        "| 0.002 | 3 | **best**: median 400 [300–500] |  |",
        "| 0.005 | 2 of 3 complete | median inf [450–inf] | diverged 1/2 |",
    ]
    assert text.count("**best**") == 1

    settings = [r for r in csv.DictReader(io.StringIO(to_csv(rows))) if r["kind"] == "setting"]
    assert [
        (r["seed"], r["fid_mnist"], r["fid_min"], r["fid_max"], r["seeds_complete"], r["best"]) for r in settings
    ] == [
        ("", "600.0", "100.0", "700.0", "3/3", "False"),
        ("", "400.0", "300.0", "500.0", "3/3", "True"),
        ("", "inf", "450.0", "inf", "2/3", "False"),
    ]
    assert json.loads(settings[0]["flags"]) == {"d_collapse": "2/3"}
    assert settings[1]["key"] == "mnist-5k:cs231n-mlp:batch_size=500,lr_d=0.002,lr_g=0.002"

    objects = json.loads(to_json(rows))
    assert [o["kind"] for o in objects] == ["seed"] * 9 + ["setting"] * 3
    best = [o for o in objects if o["best"]]
    assert len(best) == 1 and best[0]["kind"] == "setting" and best[0]["fid_median"] == 400.0
    assert (objects[-1]["fid_median"], objects[-1]["fid_min"], objects[-1]["fid_max"]) == (None, 450.0, None)
    assert (
        objects[-1]["seeds"] == [0, 1, 2] and objects[-1]["complete"] == 2 and objects[-1]["flagged"] == {"diverged": 1}
    )


SEEDED_GRID = """
name: seeded
epochs: 1
device: cpu
seeds: [0, 1, 2]
models:
  - model: cs231n-mlp
    batch_size: 500
    points:
      - {lr: 1.0e-3}
      - {lr: 2.0e-3}
"""


def test_a_seeded_sweep_reports_one_summary_per_setting(tmp_path: Path, capsys) -> None:
    grid, store = tmp_path / "seeded.yaml", tmp_path / "mlruns"
    grid.write_text(SEEDED_GRID)
    assert main(["run", str(grid), "--store", str(store)]) == 0

    def report(fmt: str) -> str:
        capsys.readouterr()
        assert main(["report", str(grid), "--store", str(store), "--format", fmt]) == 0
        return capsys.readouterr().out

    objects = json.loads(report("json"))
    seeds = [o for o in objects if o["kind"] == "seed"]
    settings = [o for o in objects if o["kind"] == "setting"]
    assert len(seeds) == 6 and not any(o["best"] for o in seeds) and len(settings) == 2
    for s in settings:  # an unreadable seed (no fid_mnist) counts as the worst; JSON writes inf as null
        fids = sorted(o["fid_mnist"] or math.inf for o in seeds if o["key"].startswith(s["key"] + ":seed="))
        expected = [None if math.isinf(f) else pytest.approx(f) for f in (statistics.median(fids), fids[0], fids[-1])]
        assert s["seeds"] == [0, 1, 2] and s["complete"] == 3
        assert [s["fid_median"], s["fid_min"], s["fid_max"]] == expected
    scored = [s for s in settings if s["fid_median"] is not None]
    best = [s for s in settings if s["best"]]  # equal medians would all be marked
    assert best == [s for s in scored if s["fid_median"] == min(x["fid_median"] for x in scored)]

    rows = list(csv.DictReader(io.StringIO(report("csv"))))
    summary = [r for r in rows if r["kind"] == "setting"]
    assert len(rows) == 8 and [(r["seed"], r["seeds_complete"]) for r in summary] == [("", "3/3")] * 2
    assert sum(r["best"] == "True" for r in rows) == sum(r["best"] == "True" for r in summary) == len(best)

    text = report("md")
    table = text[text.index("#### per setting (median over seeds)") :].splitlines()[4:6]
    assert len(table) == 2 and all(
        re.match(r"\| 0\.00[12] \| 3 \| (\*\*best\*\*: )?median \S+ \[\S+–\S+\] \|", line) for line in table
    )
    assert text.count("**best") == len(best) and ("**best**: median" in text) == (len(best) == 1)


def _loss_betas_rows() -> list[ReportRow]:
    """A grid over loss x betas at one lr and batch size: the four rows differ only there."""
    rows = []
    for loss in ("bce", "lsgan"):
        for beta1 in (0.5, 0.9):
            hp = {"lr_g": 2e-4, "lr_d": 2e-4, "batch_size": 128, "latent_dim": 100, "beta1": beta1, "beta2": 0.999}
            hp |= {"epochs": 5, "loss": loss, "d_steps": 1}
            key = f"mnist-5k:mlp:{loss},{beta1}:seed=0"
            rows.append(
                ReportRow("mlp", 2e-4, 2e-4, 128, 100, 0, "complete", verdict="good", key=key, hyperparameters=hp)
            )
    for row, fid in zip(rows, (100.0, 200.0, 300.0, 400.0)):
        row.fid_mnist = fid
    return rows


def test_the_columns_are_the_settings_that_vary() -> None:
    text = to_markdown(_loss_betas_rows()).splitlines()
    assert text[2] == "All rows: lr 0.0002, batch_size 128, latent_dim 100, epochs 5, d_steps 1, seed 0."
    assert text[4].startswith("| betas | loss | outcome | verdict | fid_mnist | readable |")
    assert [line.split(" | ")[:2] for line in text[6:10]] == [
        ["| 0.5, 0.999", "bce"],
        ["| 0.9, 0.999", "bce"],
        ["| 0.5, 0.999", "lsgan"],
        ["| 0.9, 0.999", "lsgan"],
    ]
    header = to_csv(_loss_betas_rows()).splitlines()[0]
    assert header.startswith("model,betas,loss,seed,state,")
    assert json.loads(to_json(_loss_betas_rows()))[0]["hyperparameters"]["d_steps"] == 1  # json keeps them all


def test_the_heatmap_axes_are_the_settings_that_vary(tmp_path: Path) -> None:
    rows = _loss_betas_rows()
    assert heatmap_axes(rows) == ("betas", "loss")
    assert heatmap_axes([_row(1e-3, 128), _row(5e-3, 512)]) == ("lr", "batch_size")
    assert heatmap_axes([_row(1e-3), _row(5e-3)]) == ("lr", "batch_size")  # batch_size fills in
    figure = heatmap_figure(rows)
    assert figure.axes[0].images[0].get_array().tolist() == [[100.0, 300.0], [200.0, 400.0]]  # rows betas, columns loss
    assert [p.name for p in heatmaps(rows, tmp_path)] == ["heatmap-mlp-z100.png"]


def test_a_heatmap_cell_with_several_seeds_shows_their_median() -> None:
    seeds = [_row(1e-3, 128, fid_mnist=fid, seed=seed) for seed, fid in enumerate((300.0, 100.0, 200.0))]
    for row in seeds:
        row.key = f"1e-3:128:seed={row.seed}"
    figure = heatmap_figure([*seeds, _row(5e-3, 128, fid_mnist=50.0)])
    assert figure.axes[0].images[0].get_array().tolist() == [[200.0], [50.0]]
    assert "median over seeds" in figure.axes[0].get_title()


def test_heatmaps_of_a_model_whose_rows_split_by_lr_d(tmp_path: Path) -> None:
    """The axes come from the model's rows (lr_g, because one row sets lr_d apart); a group whose rows
    all share one lr still draws on them."""
    rows = [_row(lr, batch) for lr in (1e-3, 2e-4) for batch in (64, 128)]
    apart = _row(1e-3, 64)
    apart.lr_d, apart.key = 2e-4, "apart"
    assert len(heatmaps([*rows, apart], tmp_path)) == 2


def test_a_flagged_trial_is_never_best_and_ties_show() -> None:
    trials = [
        _trial(0, 1e-3, 0, 20.0, flags={"diverged": 1}),  # scored on noise: the lowest
        _trial(1, 2e-3, 0, 90.0),
        _trial(2, 5e-3, 0, 90.0),
        _trial(3, 1e-2, 0, 95.0, flags={"mode_collapse": 2}, recovered={"mode_collapse": 4}),
    ]
    rows = collect_rows(trials, None)
    assert [r.best for r in rows] == [False, True, True, False]
    text = to_markdown(rows)
    assert text.count("(**best (tie)**)") == 2 and "(**best**)" not in text


def test_digits_are_counted_only_where_the_judge_could_read_them() -> None:
    """The quickstart's lr 2e-4 batch 256 trial: 100 near-identical noise squares, judge confidence 0.19,
    counted 4/10 digits, which read as progress."""
    trials = [_trial(0, 1e-3, 0, 1278.0), _trial(1, 2e-3, 0, 225.0)]
    trials[0].user_attrs["final"].update(readable=1.0, confidence=0.19, modes_covered=4)
    trials[1].user_attrs["final"].update(readable=1.0, confidence=0.9, modes_covered=10)
    assert [r.modes_covered for r in collect_rows(trials, None)] == [None, 10]


def test_unreadable_samples_show_no_score_and_are_never_best() -> None:
    trials = [
        _trial(0, 1e-3, 0, 1376.34),
        _trial(1, 2e-3, 0, 700.0),
    ]
    trials[0].user_attrs["final"]["readable"] = 0.0
    rows = collect_rows(trials, None)
    assert [(r.unreadable, r.fid_mnist, r.best) for r in rows] == [(True, None, False), (False, 700.0, True)]
    assert "|  | 0.00 |" in to_markdown(rows)  # no score, and the share the judge read


def test_the_footer_counts_the_trial_epochs_early_stopping_saved() -> None:
    stopped = _trial(0, 5e-3, 0, 900.0, flags={"d_collapse": 5})
    stopped.user_attrs.update(verdict="stopped at epoch 11 of 30: D-loss collapse at epoch 5")
    stopped.user_attrs["final"]["epoch"] = 11
    full = _trial(1, 1e-3, 0, 90.0)
    full.user_attrs["final"]["epoch"] = 30
    for trial in (stopped, full):
        trial.user_attrs["hyperparameters"]["epochs"] = 30
    rows = collect_rows([stopped, full], None)
    assert saved_epochs(rows) == (1, 19, 60)
    assert to_markdown(rows).endswith("Early stopping ended 1 hopeless trial(s), saving 19 of 60 trial-epochs.\n")
    assert "Early stopping" not in to_markdown(rows[1:])


def test_rows_scored_by_another_judge_are_marked_and_never_ranked() -> None:
    trials = [_trial(0, 1e-3, 0, 50.0), _trial(1, 2e-3, 0, 80.0), _trial(2, 5e-3, 0, 90.0)]
    for trial, judge in zip(trials, ["old/v3/aaaaaaaaaaaa", "new/v4/bbbbbbbbbbbb", "new/v4/bbbbbbbbbbbb"]):
        trial.user_attrs["judge"] = judge
    rows = collect_rows(trials, None, judge="new/v4/bbbbbbbbbbbb")
    assert [r.other_judge for r in rows] == [True, False, False] and [r.best for r in rows] == [False, True, False]
    assert rows[0].outcome == "good" and rows[0].said == "good [scored by old/v3/aaaaaaaaaaaa]"
    text = to_markdown(rows)
    assert "Scored by judge new/v4/bbbbbbbbbbbb." in text and "1 row(s) were scored by another judge" in text
    assert [r.best for r in collect_rows(trials, None)] == [True, False, False]  # a store without a judge record


def test_every_format_speaks_one_vocabulary() -> None:
    """outcome is good/bad/unclear (empty until complete), verdict the sentence, fid_mnist a number or empty
    beside readable: in markdown, csv, json and gansweep.report's DataFrame alike."""
    import pandas as pd

    from gansweep.tables import seed_records

    good, unreadable = _trial(0, 1e-3, 0, 120.0), _trial(1, 2e-3, 0, 1376.34)
    good.user_attrs.update(outcome="good", verdict="good")
    good.user_attrs["final"]["readable"] = 0.97
    unreadable.user_attrs.update(outcome="unclear", verdict="too early to tell at epoch 1")
    unreadable.user_attrs["final"]["readable"] = 0.0
    running = _trial(2, 5e-3, 0, None, state="RUNNING")
    del running.user_attrs["verdict"]  # not judged yet
    rows = collect_rows([good, unreadable, running], None)
    expected = [
        ("complete", "good", "good", 120.0, 0.97),
        ("complete", "unclear", "too early to tell at epoch 1", None, 0.0),
        ("running", None, "", None, None),
    ]
    fields = ("state", "outcome", "verdict", "fid_mnist", "readable")
    assert [tuple(r[f] for f in fields) for r in seed_records(rows)] == expected
    assert [tuple(r[f] for f in fields) for r in json.loads(to_json(rows))] == expected
    written = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [tuple(r[f] for f in fields) for r in written] == [
        tuple("" if v is None else str(v) for v in row) for row in expected
    ]
    frame = pd.DataFrame(seed_records(rows))  # what gansweep.report returns
    assert frame.fid_mnist.dtype == float and frame.readable.dtype == float  # numbers; NaN where there is none
    assert list(frame.outcome[:2]) == ["good", "unclear"] and frame.outcome.isna()[2]  # empty until complete
    assert "judged" not in frame and "unreadable" not in frame
    table = [line.split(" | ") for line in to_markdown(rows).splitlines() if line.startswith("| 0.")]
    assert [cells[1:5] for cells in table] == [
        ["good (**best**)", "good", "120", "0.97"],
        ["unclear", "too early to tell at epoch 1", "", "0.00"],
        ["", "_running_", "", ""],
    ]


def test_diagnose_takes_the_run_ids_report_prints(store, capsys) -> None:
    grid, folder = store
    capsys.readouterr()
    assert main(["report", str(grid), "--store", str(folder)]) == 0
    short = capsys.readouterr().out.splitlines()[6].rstrip(" |").rsplit(" | ", 1)[1]
    assert len(short) == 8
    assert main(["diagnose", short, "--store", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("verdict: ")
