"""Setting vs outcome, read back from the sweep's store: the table the seed reports pasted by hand.

Rows come from the sweep's Optuna trials (one per grid key, the one `gansweep status` shows: complete,
else running, waiting, failed), which carry each trial's final metrics, verdict, flags and MLflow run id:
reading them needs no MLflow, so a report takes a couple of seconds. They are listed in the grid file's
order; points not trained yet are shown as waiting, not dropped. Where a row carries the
report's own words (``reported``), columns set them beside the measurement: the words, what they read as
in the verdict's vocabulary (``read_reported``: good or bad, and the flags they name), and which of those
the measurement agrees with; a line under the table counts the agreement per item. A setting trained under several seeds (``seeds: [0, 1, 2]``) also
gets a summary over its complete seeds: median fid_mnist and range, and in how many seeds each flag
stood; the sweep's best is then the setting with the lowest median, so one lucky seed cannot win.
A trial judged bad (or a setting with such a seed) is never the best, whatever its score; equal
scores are all marked, as a tie. Samples the judge could not read show "unreadable", not the
constant fid_mnist they get.

The columns are the settings that vary among a model's rows; what they share is one line above.

Example:
    >>> from gansweep.tables import ReportRow, to_markdown
    >>> bad = ReportRow("mlp", 2e-4, 2e-4, 512, 100, 0, "complete", verdict="D-loss collapse at epoch 4",
    ...                 fid_mnist=612.0, readable=0.91, modes_covered=3, distinct=3, flags={"d_collapse": 4}, run_id="0123456789ab",
    ...                 reported="Default, bad result", key="mnist-5k:mlp:lr=0.0002:seed=0", judged="bad")
    >>> good = ReportRow("mlp", 5e-3, 5e-3, 512, 100, 0, "complete", verdict="good", fid_mnist=120.0, readable=1.0,
    ...                  modes_covered=10, distinct=1000, run_id="89abcdef0123", key="mnist-5k:mlp:lr=0.005:seed=0", judged="good",
    ...                  reported="Mode collapse, bad after 9 epochs")
    >>> print(to_markdown([bad, good]))
    ### mlp
    <BLANKLINE>
    All rows: batch_size 512, latent_dim 100, seed 0.
    <BLANKLINE>
    | lr | outcome | verdict | reported | read as | agrees | fid_mnist | readable | modes | distinct | flag onsets | run |
    |---|---|---|---|---|---|---|---|---|---|---|---|
    | 0.0002 | bad | D-loss collapse at epoch 4 | Default, bad result | bad | outcome ✓ | 612 | 0.91 | 3/10 | ~3 | d_collapse @ 4 | 01234567 |
    | 0.005 | good | good | Mode collapse, bad after 9 epochs | bad; mode_collapse @ 9 | outcome ✗, mode_collapse ✗ | 120 | 1.00 | 10/10 | 1000+ |  | 89abcdef |
    <BLANKLINE>
    Agreement with the report, where both it and the measurement say (trials too early to tell are not compared): outcome 1 of 2, mode_collapse 0 of 1, d_collapse 0 of 0, unstable 0 of 0.
    <BLANKLINE>

From the command line::

    gansweep report sweeps/quickstart.yaml              # markdown on stdout
    gansweep report quickstart --format json            # by experiment name
    gansweep report sweeps/report-dcgan64.yaml --out report/dcgan64.md   # + heatmaps beside it
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gansweep.config import TrialPlan
from gansweep.diagnostics.evaluate import STOPPED
from gansweep.diagnostics.flags import BAD_FLAGS, illegible
from gansweep.diagnostics.metrics import distinct_words, unreadable
from gansweep.options import HYPERPARAMETERS
from gansweep.reported import READ_FLAGS, Reading, read_reported
from gansweep.sweep import TrialRecord, recorded_judge, records_by_key

COLLAPSE_FLAGS = ("d_collapse", "mode_collapse", "diverged")


@dataclass
class ReportRow:
    model: str
    lr_g: float
    lr_d: float
    batch_size: int
    latent_dim: int
    seed: int
    state: str
    """complete, running, failed, interrupted or waiting."""
    verdict: str = ""
    fid_mnist: float | None = None
    modes_covered: int | None = None
    """Digits the judge counted among the final samples; None where it could not read them as digits
    (unreadable, or confidence under ``flags.LOW_CONFIDENCE``: near-copies of noise counted 4/10)."""
    distinct: float | None = None
    """About how many distinct images the final samples were drawn from (``metrics.distinct_images``);
    None where the judge could not read them."""
    flags: dict[str, int] = field(default_factory=dict)
    run_id: str = ""
    reported: str | None = None
    best: bool = False
    key: str = ""
    unreadable: bool = False
    """The judge could not read the final samples: no fid_mnist (it would be a constant)."""
    readable: float | None = None
    """The share of the final samples the judge could read (under 0.5: ``unreadable``)."""
    epochs_trained: int | None = None
    recovered: dict[str, int] = field(default_factory=dict)
    """Flag name -> epoch it ended: raised, then gone by the end of training."""
    judged: str | None = None
    """The diagnosis's outcome: good, bad, or unclear (under-trained, too early to tell); every output
    calls it ``outcome`` (``seed_records``)."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """All of them (``Hyperparameters.as_params()``); the fields above name the four every table had."""
    judge: str = ""
    """``Judge.name`` of the judge that scored it ("" if not recorded)."""
    other_judge: bool = False
    """Complete, but scored by another judge than the sweep's: its metrics are not comparable, and it is
    never ranked with the rest."""

    @property
    def outcome(self) -> str | None:
        """good, bad or unclear; None until the trial is complete (``state`` says where it stands)."""
        return self.judged if self.state == "complete" else None

    @property
    def said(self) -> str:
        """The verdict as the markdown writes it: naming another judge that scored it; a trial not complete
        by its state, in italics."""
        if self.state != "complete":
            return f"_{self.state}_"
        return f"{self.verdict} [scored by {self.judge or 'an unrecorded judge'}]" if self.other_judge else self.verdict

    @property
    def flagged(self) -> bool:
        """A bad flag (a collapse, divergence, ...) stood at the end: never the sweep's best."""
        return any(name in BAD_FLAGS and name not in self.recovered for name in self.flags)


@dataclass
class SettingSummary:
    """One setting trained under several seeds, over the seeds whose trial is complete."""

    model: str
    lr_g: float
    lr_d: float
    batch_size: int
    latent_dim: int
    key: str
    """The seed rows' key less its ``:seed=N``."""
    seeds: list[int]
    complete: int
    flagged: dict[str, int]
    """Flag name -> complete seeds in which it was raised and not recovered."""
    bad_seeds: int
    """Complete seeds that ended with a bad flag: a setting with any is never the sweep's best."""
    fid_median: float | None
    fid_min: float | None
    fid_max: float | None
    best: bool = False
    hyperparameters: dict[str, Any] = field(default_factory=dict)


def _row(record: TrialRecord) -> ReportRow:
    hp = record.hyperparameters or {}
    modes = None if illegible(record.final) else record.final.get("modes_covered")
    return ReportRow(
        model=record.model or "",
        lr_g=hp["lr_g"],
        lr_d=hp["lr_d"],
        batch_size=hp["batch_size"],
        latent_dim=hp["latent_dim"],
        seed=record.seed or 0,
        state=record.state.value,
        verdict=record.verdict,
        fid_mnist=None if unreadable(record.final) else record.final.get("fid_mnist"),
        unreadable=unreadable(record.final),
        readable=record.final.get("readable"),
        epochs_trained=None if "epoch" not in record.final else int(record.final["epoch"]),
        modes_covered=None if modes is None else int(modes),
        distinct=None if unreadable(record.final) else record.final.get("distinct"),
        flags={k: v for k, v in record.flags.items() if v is not None},
        run_id=record.run_id,
        reported=record.reported,
        key=record.key or "",
        recovered=record.recovered,
        judged=record.outcome if record.outcome is not None else _judged_before_outcomes(record.verdict),
        hyperparameters=hp,
        judge=record.judge,
    )


def _judged_before_outcomes(verdict: str) -> str | None:
    """Stores written before trials recorded their outcome: a verdict was good or bad."""
    return None if not verdict else "good" if verdict == "good" else "bad"


def _waiting(plan: TrialPlan) -> ReportRow:
    hp = plan.hp
    return ReportRow(
        plan.model,
        hp.lr_g,
        hp.lr_d,
        hp.batch_size,
        hp.latent_dim,
        plan.seed,
        "waiting",
        reported=plan.reported,
        key=plan.key,
        hyperparameters=hp.as_params(),
    )


def collect_rows(trials: list[Any], plans: list[TrialPlan] | None, judge: str | None = None) -> list[ReportRow]:
    """One row per grid key: in ``plans`` order (waiting where no trial exists), or trial order without.
    ``judge`` is the name of the sweep's judge (``sweep.recorded_judge``): complete rows scored by
    another are marked ``other_judge``."""
    chosen = records_by_key(trials)  # the trial that decides each point, as `gansweep status` picks it
    if plans is None:
        rows = [_row(r) for r in sorted(chosen.values(), key=lambda r: r.number)]
    else:
        rows = [_row(chosen[p.key]) if p.key in chosen else _waiting(p) for p in plans]
        for row, plan in zip(rows, plans):
            row.reported = plan.reported or row.reported
    for row in rows:
        row.other_judge = judge is not None and row.state == "complete" and row.judge != judge
    if all(len(group) == 1 for group in _by_setting(rows).values()):  # with seeds a setting is best
        _mark_best([r for r in _scored(rows) if not r.flagged], _fid)
    return rows


def study_rows(study: Any, plans: list[TrialPlan] | None) -> list[ReportRow]:
    """``collect_rows`` of a sweep's study, against the judge it records."""
    judge = recorded_judge(study)
    return collect_rows(study.get_trials(deepcopy=False), plans, judge["name"] if judge else None)


def _mark_best(candidates: list[Any], score: Callable[[Any], float]) -> None:
    """Every candidate with the lowest score: several are a tie, shown as one."""
    low = min(map(score, candidates), default=None)
    for candidate in candidates:
        candidate.best = score(candidate) == low


def _scored(rows: list[ReportRow]) -> list[ReportRow]:
    """The complete rows with a finite fid_mnist from the sweep's judge: the only ones a best or a median counts."""
    return [
        r
        for r in rows
        if r.state == "complete" and not r.other_judge and r.fid_mnist is not None and math.isfinite(r.fid_mnist)
    ]


def _fid(row: ReportRow) -> float:
    return math.inf if row.fid_mnist is None else row.fid_mnist


def _fid_median(summary: SettingSummary) -> float:
    return math.inf if summary.fid_median is None else summary.fid_median


def _by_setting(rows: list[ReportRow]) -> dict[str, list[ReportRow]]:
    """Rows by setting: their key less ``:seed=N`` (rows of one setting differ only in their seed)."""
    groups: dict[str, list[ReportRow]] = {}
    for row in rows:
        groups.setdefault(row.key.rsplit(":seed=", 1)[0], []).append(row)
    return groups


def summarize(rows: list[ReportRow]) -> list[SettingSummary]:
    """One summary per setting with several seeds; the lowest median fid_mnist is the sweep's best."""
    summaries = [_summary(key, group) for key, group in _by_setting(rows).items() if len(group) > 1]
    _mark_best([s for s in summaries if math.isfinite(_fid_median(s)) and not s.bad_seeds], _fid_median)
    return summaries


def _summary(key: str, group: list[ReportRow]) -> SettingSummary:
    done = [r for r in group if r.state == "complete" and not r.other_judge]
    flagged = Counter(name for r in done for name in r.flags if name not in r.recovered)
    # A complete seed without a finite fid_mnist (diverged) counts as the worst, not as absent: otherwise
    # a setting that diverged in 2 of 3 seeds would be judged by its one good seed.
    scored = _scored(group)
    fids = sorted([_fid(r) for r in scored] + [math.inf] * (len(done) - len(scored)))
    median, low, high = (statistics.median(fids), fids[0], fids[-1]) if fids else (None, None, None)
    first = group[0]
    return SettingSummary(
        first.model,
        first.lr_g,
        first.lr_d,
        first.batch_size,
        first.latent_dim,
        key,
        [r.seed for r in group],
        len(done),
        dict(flagged),
        sum(r.flagged for r in done),
        median,
        low,
        high,
        hyperparameters=first.hyperparameters,
    )


def readings(rows: list[ReportRow]) -> list[Reading | None]:
    """Each row's ``read_reported`` (None without words), the default row of its model read first."""
    defaults = {}
    for row in rows:
        if row.reported and row.reported.lower().startswith("default") and row.model not in defaults:
            defaults[row.model] = read_reported(row.reported)
    return [read_reported(r.reported, defaults.get(r.model)) if r.reported else None for r in rows]


def _happened(row: ReportRow, flag: str) -> bool:
    """Whether the trial raised ``flag`` as the report's words mean it: an instability is an episode
    (recovered or not); a collapse is one that lasted to the end, as "bad after 9 epochs" says."""
    return flag in row.flags and (flag == "unstable" or flag not in row.recovered)


def comparisons(row: ReportRow, reading: Reading | None) -> dict[str, bool]:
    """``outcome`` and each flag the words speak of -> whether the measurement agrees. Only for a
    complete trial judged good or bad: one too early to tell or still improving is not compared."""
    if reading is None or row.state != "complete" or row.judged not in ("good", "bad"):
        return {}
    agree = {"outcome": reading.outcome == row.judged} if reading.outcome else {}
    return agree | {name: said == _happened(row, name) for name, said in reading.flags.items()}


def agreement(rows: list[ReportRow]) -> dict[str, tuple[int, int]]:
    """``outcome`` and each of ``READ_FLAGS`` -> (rows where measurement and report agree, rows where
    both say: ``comparisons``)."""
    compared = [comparisons(r, reading) for r, reading in zip(rows, readings(rows))]
    return {
        item: (sum(c[item] for c in compared if item in c), sum(item in c for c in compared))
        for item in ("outcome", *READ_FLAGS)
    }


def _agreement_line(rows: list[ReportRow]) -> str:
    counts = ", ".join(f"{item} {agree} of {known}" for item, (agree, known) in agreement(rows).items())
    return (
        f"Agreement with the report, where both it and the measurement say (trials too early to tell are not "
        f"compared): {counts}."
    )


def _cell(text: str) -> str:
    """A table cell as markdown shows it as written: a ``|`` would end the cell, and ``<`` and ``>`` would
    open raw HTML in report.md and the MLflow run's description (a ``reported:`` of ``<img src=...>``)."""
    return text.replace("|", "/").replace("<", "&lt;").replace(">", "&gt;")


def _agrees(compared: dict[str, bool]) -> str:
    return ", ".join(f"{item} {'✓' if same else '✗'}" for item, same in compared.items())


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _best(marked: int) -> str:
    return "**best**" if marked == 1 else "**best (tie)**"


def _cells(rows: list[ReportRow] | list[SettingSummary], two_lrs: bool | None = None) -> list[dict[str, str]]:
    """Each row's setting as table cells, in ``options.HYPERPARAMETERS`` order, then its seed: one ``lr``
    unless some row sets ``lr_g`` and ``lr_d`` apart, ``betas`` as one cell."""
    two_lrs = any(r.lr_g != r.lr_d for r in rows) if two_lrs is None else two_lrs
    names = [h.name for h in HYPERPARAMETERS if h.name not in (("lr",) if two_lrs else ("lr_g", "lr_d"))]
    cells = []
    for r in rows:
        hp: dict[str, Any] = {"lr_g": r.lr_g, "lr_d": r.lr_d, "batch_size": r.batch_size, "latent_dim": r.latent_dim}
        hp |= r.hyperparameters | {"lr": r.lr_g}
        if "beta1" in hp:
            hp["betas"] = f"{hp['beta1']:g}, {hp['beta2']:g}"
        seed = {"seed": str(r.seed)} if isinstance(r, ReportRow) else {}
        cells.append({n: f"{hp[n]:g}" if isinstance(hp[n], float) else str(hp[n]) for n in names if n in hp} | seed)
    return cells


def varying(rows: list[ReportRow] | list[SettingSummary]) -> tuple[list[str], dict[str, str]]:
    """(the settings whose value differs between rows, in order: the table's columns; the others with
    their one value: the line above the table)."""
    cells = _cells(rows)
    names = list(dict.fromkeys(n for c in cells for n in c))
    differ = [n for n in names if len({c.get(n, "") for c in cells}) > 1]
    return differ, {n: cells[0][n] for n in names if n not in differ and n in cells[0]}


def _fixed_line(fixed: dict[str, str]) -> list[str]:
    return ["All rows: " + ", ".join(f"{name} {value}" for name, value in fixed.items()) + ".", ""] if fixed else []


def _flagged(summary: SettingSummary) -> dict[str, str]:
    return {name: f"{n}/{summary.complete}" for name, n in summary.flagged.items()}


def _summary_table(summaries: list[SettingSummary]) -> list[str]:
    columns, _ = varying(summaries)
    header = [*columns, "seeds", "fid_mnist", "flags (of complete seeds)"]
    lines = ["#### per setting (median over seeds)", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = _best(sum(s.best for s in summaries))
    for s, cells in zip(summaries, _cells(summaries)):
        seeds = str(len(s.seeds)) if s.complete == len(s.seeds) else f"{s.complete} of {len(s.seeds)} complete"
        fid = (
            ""
            if s.fid_median is None
            else f"median {_number(s.fid_median)} [{_number(s.fid_min)}–{_number(s.fid_max)}]"
        )
        fid = f"{best}: {fid}" if s.best else fid
        flags = ", ".join(f"{name} {count}" for name, count in _flagged(s).items())
        lines.append("| " + " | ".join([*(cells.get(c, "") for c in columns), seeds, fid, flags]) + " |")
    return lines + [""]


def to_markdown(rows: list[ReportRow]) -> str:
    """Per model: the settings every row shares in one line, then a table whose columns are the
    settings that vary (a seed column only with several seeds), the outcome, fid_mnist and flags."""
    lines: list[str] = []
    summaries = summarize(rows)
    best = _best(sum(r.best for r in rows))
    for model in dict.fromkeys(r.model for r in rows):
        part = [r for r in rows if r.model == model]
        with_reported = any(r.reported for r in part)
        columns, fixed = varying(part)
        header = [
            *columns,
            "outcome",
            "verdict",
            *(["reported", "read as", "agrees"] if with_reported else []),
            "fid_mnist",
            "readable",
            "modes",
            "distinct",
            "flag onsets",
            "run",
        ]
        lines += [f"### {model}", "", *_fixed_line(fixed), "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r, cells, reading in zip(part, _cells(part), readings(part)):
            outcome = f"{r.outcome or ''} ({best})" if r.best else r.outcome or ""
            onsets = ", ".join(f"{name} @ {epoch}" for name, epoch in r.flags.items())
            row = [*(cells.get(c, "") for c in columns), outcome, r.said]
            if with_reported:
                row += [r.reported or "", reading.wording if reading else "", _agrees(comparisons(r, reading))]
            row += [
                "" if r.unreadable else _number(r.fid_mnist),
                "" if r.readable is None else f"{r.readable:.2f}",
                "" if r.modes_covered is None else f"{r.modes_covered}/10",
                "" if r.distinct is None else distinct_words(r.distinct),
                onsets,
                r.run_id[:8],
            ]
            lines.append("| " + " | ".join(map(_cell, row)) + " |")
        if with_reported:
            lines += ["", _agreement_line(part)]
        lines.append("")
        if own := [s for s in summaries if s.model == model]:
            lines += _summary_table(own)
    return "\n".join(lines + _saved_line(rows) + _judge_lines(rows))


def _judge_lines(rows: list[ReportRow]) -> list[str]:
    """Which judge scored the table, and the rows another judge scored (not ranked with the rest)."""
    own = sorted({r.judge for r in rows if r.state == "complete" and r.judge and not r.other_judge})
    others = [r for r in rows if r.other_judge]
    lines = [f"Scored by judge {', '.join(own)}.", ""] if own else []
    if others:
        lines += [
            f"{len(others)} row(s) were scored by another judge than the sweep's (marked [scored by ...]): "
            "their metrics do not compare with the rest, and they are never ranked.",
            "",
        ]
    return lines


def saved_epochs(rows: list[ReportRow]) -> tuple[int, int, int]:
    """(trials that early stopping ended, trial-epochs it saved, trial-epochs planned for every row)."""
    stopped = [r for r in rows if r.state == "complete" and r.verdict.startswith(STOPPED)]
    planned = sum(int(r.hyperparameters.get("epochs", 0)) for r in rows)
    return len(stopped), sum(int(r.hyperparameters["epochs"]) - (r.epochs_trained or 0) for r in stopped), planned


def _saved_line(rows: list[ReportRow]) -> list[str]:
    stopped, saved, planned = saved_epochs(rows)
    if not stopped:
        return []
    return [f"Early stopping ended {stopped} hopeless trial(s), saving {saved} of {planned} trial-epochs.", ""]


def to_csv(rows: list[ReportRow]) -> str:
    """One line per row, then one per setting with several seeds (``kind``); the settings that vary
    across the report are columns, as in the markdown."""
    columns = [c for c in varying(rows)[0] if c != "seed"]
    out = io.StringIO()
    fields = ["model", *columns, "seed", "state", "outcome", "verdict", "reported", "read_as", "agrees", "fid_mnist"]
    fields += ["readable", "modes_covered", "distinct", "flags"]
    fields += ["best", "run_id", "key", "kind", "seeds_complete", "fid_min", "fid_max"]
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for record, cells in zip(seed_records(rows), _cells(rows)):
        writer.writerow(record | cells | {"flags": json.dumps(record["flags"]), "agrees": json.dumps(record["agrees"])})
    summaries = summarize(rows)
    for s, cells in zip(summaries, _cells(summaries)):  # fid_mnist holds the median; flags, the seeds that raised each
        flagged = json.dumps(_flagged(s))
        extra = {
            "fid_mnist": s.fid_median,
            "flags": flagged,
            "kind": "setting",
            "seeds_complete": f"{s.complete}/{len(s.seeds)}",
        }
        writer.writerow(asdict(s) | cells | extra | {"seed": ""})
    return out.getvalue()


def to_json(rows: list[ReportRow]) -> str:
    """A list: the seed rows (``"kind": "seed"``), then one object per setting with several seeds (``"kind": "setting"``)."""
    # JSON has no infinity: a median made worst by diverged seeds is null, as a missing fid is.
    settings = [
        {**{k: None if isinstance(v, float) and math.isinf(v) else v for k, v in asdict(s).items()}, "kind": "setting"}
        for s in summarize(rows)
    ]
    return json.dumps(seed_records(rows) + settings)


def seed_records(rows: list[ReportRow]) -> list[dict[str, Any]]:
    """The rows as every format but markdown gives them (csv, json, ``gansweep.report``'s DataFrame), in
    one vocabulary: ``state`` (complete, running, waiting, failed, ...), ``outcome`` good, bad or unclear
    (None until complete), ``verdict`` the sentence, and numbers or None in numeric fields: ``fid_mnist``
    is None where the judge could not read the samples, ``readable`` how much of them it read."""
    records = []
    for r, reading in zip(rows, readings(rows)):
        record = {k: v for k, v in asdict(r).items() if k not in ("judged", "unreadable")}
        record |= {"outcome": r.outcome, "fid_mnist": None if r.unreadable else r.fid_mnist, "kind": "seed"}
        records.append(record | _read_fields(r, reading))
    return records


def _read_fields(row: ReportRow, reading: Reading | None) -> dict[str, Any]:
    """``read_as`` (the report's words in the verdict's vocabulary) and ``agrees`` (item -> agreement)."""
    return {"read_as": reading.wording if reading else None, "agrees": comparisons(row, reading)}


FORMATS = {"md": to_markdown, "csv": to_csv, "json": to_json}


def heatmap_axes(rows: list[ReportRow]) -> tuple[str, str]:
    """A heatmap's (rows, columns): lr and batch_size when both vary, else the settings that vary
    first, lr and batch_size filling in for those that do not."""
    columns = [c for c in varying(rows)[0] if c != "seed"]
    lr = "lr_g" if "lr_g" in _cells(rows)[0] else "lr"
    usual = [lr, "batch_size"]
    picks = [n for n in usual if n in columns] + [c for c in columns if c not in usual]
    picks += [n for n in usual if n not in picks]
    return picks[0], picks[1]


def _ordered(values: list[str]) -> list[str]:
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct, key=float)
    except ValueError:  # loss names, betas pairs: in the grid's order
        return distinct


def heatmap_figure(rows: list[ReportRow], axes: tuple[str, str] | None = None):
    """Rows of one model: fid_mnist over two settings (``heatmap_axes``), the median where several seeds
    share a cell; cells hatched where most complete seeds ended collapsed (a collapse the trial
    recovered from is not one)."""
    # Imported only when a heatmap is drawn: the text formats stay free of matplotlib's start-up.
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    y, x = axes or heatmap_axes(rows)
    cells = _cells(rows, two_lrs="lr_g" in (y, x) or "lr_d" in (y, x) or None)  # as the model's axes say
    ys, xs = _ordered([c[y] for c in cells]), _ordered([c[x] for c in cells])
    groups: dict[tuple[int, int], list[ReportRow]] = {}
    for r, c in zip(rows, cells):
        groups.setdefault((ys.index(c[y]), xs.index(c[x])), []).append(r)
    fid = np.full((len(ys), len(xs)), np.nan)
    fig = Figure(figsize=(1.6 + 1.3 * len(xs), 1.2 + 0.8 * len(ys)))
    ax = fig.subplots()
    for (i, j), group in groups.items():
        scored, done = _scored(group), [r for r in group if r.state == "complete" and not r.other_judge]
        if scored:
            fid[i, j] = statistics.median(_fid(r) for r in scored)
        collapsed = [r for r in done if any(f in r.flags and f not in r.recovered for f in COLLAPSE_FLAGS)]
        if done and 2 * len(collapsed) > len(done):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="white", linewidth=0))
        label = _number(fid[i, j]) if scored else group[0].state
        box = {"facecolor": "black", "alpha": 0.4, "linewidth": 0}
        ax.text(j, i, label, ha="center", va="center", color="white", fontsize=9, bbox=box)
    image = ax.imshow(fid, cmap="viridis_r", aspect="auto")
    fig.colorbar(image, ax=ax, label="fid_mnist (lower is better)")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    seeds = " (median over seeds)" if any(len(g) > 1 for g in groups.values()) else ""
    ax.set_title(f"{rows[0].model}, latent_dim {rows[0].latent_dim}{seeds} (hatched: collapsed)")
    fig.tight_layout()
    return fig


def heatmaps(rows: list[ReportRow], folder: Path) -> list[Path]:
    """Per model, ``heatmap_figure`` over its two ``heatmap_axes``, one per value of the other settings
    that vary: heatmap-MODEL-zLATENT.png (and ``-name=value`` for each further setting) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in dict.fromkeys(r.model for r in rows):
        part = [r for r in rows if r.model == model]
        axes = heatmap_axes(part)
        others = [c for c in varying(part)[0] if c not in (*axes, "seed", "latent_dim")]
        groups: dict[str, list[ReportRow]] = {}
        for r, c in zip(part, _cells(part)):
            name = f"heatmap-{model}" + ("" if "latent_dim" in axes else f"-z{r.latent_dim}")
            name += "".join(f"-{o}={c[o]}".replace(", ", "_") for o in others if o in c)
            groups.setdefault(name, []).append(r)
        for name, group in groups.items():
            path = folder / f"{name}.png"
            heatmap_figure(group, axes).savefig(path, dpi=100)
            paths.append(path)
    return paths
