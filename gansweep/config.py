"""grid.yaml: the sweep file, validated, and expanded into trials.

Example file::

    name: quickstart              # study / experiment name (default: the file's stem)
    dataset: mnist-5k             # mnist-5k (embedded), mnist, fashion-mnist
    epochs: 5
    seed: 0                       # or seeds: [0, 1, 2] to repeat every point
    device: cpu                   # auto = cuda > mps > cpu
    loss: bce                     # any hyperparameter here is fixed for every model below
    models:
      - model: dcgan28
        width: 32                 # ... or fixed for this model only
        grid:                     # Cartesian product
          lr: [2e-4, 5e-3]
          batch_size: [64, 256]
        points:                   # explicit rows, e.g. a report's table
          - {lr: 2e-4, batch_size: 512, reported: "Default, bad result"}

Every error names the file, the line and the field, and what is allowed. Unknown keys, a key given
twice, and ``true``/``false`` where a number belongs are rejected. Numbers such as ``2e-4`` (which YAML
1.1 reads as text) are accepted as numbers. A file is read only up to ``grid_yaml.MAX_GRID_BYTES``, and a sweep
plans at most ``max_trials`` trials, counted before any is expanded.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from gansweep.data import DATASETS, TRAIN_SIZES
from gansweep.diagnostics.evaluate import AUTO, EVAL_EVERY, EVAL_SAMPLES
from gansweep.diagnostics.flags import BAD_FLAGS, FLAG_NAMES
from gansweep.diagnostics.metrics import METRICS
from gansweep.grid_yaml import ConfigError, check_nodes, dotted, given_once, line_of, override, parse, read_text
from gansweep.hparams import (
    MAXIMA,
    HyperparameterError,
    Hyperparameters,
    allowed_hyperparameters,
    resolve_hyperparameters,
)
from gansweep.models import MODELS
from gansweep.options import DATA_DIR, DATASET, GROUP_SIZE, HYPERPARAMETERS, MAX_GROUP, name_problem, path_problem
from gansweep.trainer import NORM_METRICS, STEP_METRICS

OBJECTIVE_METRICS = ("fid_mnist", "d_gap", *METRICS, *STEP_METRICS, *NORM_METRICS)

MAX_TRIALS = 1000
"""Default of ``max_trials``: the seed reports' tables have at most 11 rows, and a sweep is trained
trial by trial; a 10^10-point grid, expanded, died of MemoryError after 37 s and 5 GB (issue 15)."""
MAX_TRIALS_CEILING = 100_000
"""The most ``max_trials`` may be raised to: every trial is queued in the study before any trains, 0.4 ms
and 275 bytes of journal each (2,000 in 0.8 s, 549 KB, measured on the 2-core machine), so 100,000 take
40 s and 27 MB that every command reads again; a search of 10^19 trials, allowed by a max_trials as
large, filled the memory listing its slots (issue 26)."""
MAX_EVAL_SAMPLES = 10_000
"""The judge reads every evaluation's samples at once: 10,000 are ~31 MB, and the flags' noise
thresholds were measured at 256."""
MAX_SEED = 2**32 - 1
"""NumPy's seed range (torch takes 2^64, but a seed must mean the same to both)."""
MAX_REPORTED = 1000
"""The longest ``reported:``: the seed reports' words for a row are under 60 characters, and MLflow keeps a
tag of at most 8,000 (``gansweep.reported`` on the trial's run), cutting a longer one with only a log line."""


HyperparameterValue = float | int | str | list[float]
"""A grid value: a number, a loss name, or a pair of betas."""


def _listed_once(values: list[Any], what: str = "") -> None:
    """A value listed twice names one point (or seed) twice, trained once: the list is refused rather than
    quietly shortened (``seeds: [0, 0]`` trained one seed, and the report read one seed of one)."""
    for i, value in enumerate(values):
        if value in values[:i]:
            raise ValueError(f"{what}{value!r} is listed twice; a point is trained once: list each value once")


def _one_of(kind: str, name: str, options) -> str:
    if name not in options:
        raise ValueError(f"unknown {kind} {name!r}; choose one of: {', '.join(options)}")
    return name


def _known_model(name: str) -> str:
    return _one_of("model", name, MODELS)


ModelName = Annotated[str, AfterValidator(_known_model)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


FIXABLE = tuple(h for h in HYPERPARAMETERS if h.name != "epochs")
"""What the whole file, a model entry or the search may fix (epochs is the sweep's own required field)."""


class _Fixed(_Strict):
    def fixed(self) -> dict[str, Any]:
        """The hyperparameters fixed at this level of the file."""
        return {k: v for k, v in self.model_dump(include={h.name for h in FIXABLE}).items() if v is not None}


if TYPE_CHECKING:  # a model built at run time is opaque to mypy: to it these are plain models
    _FixedHyperparameters = _Fixed
else:
    _FixedHyperparameters = create_model(
        "_FixedHyperparameters",
        __base__=_Fixed,
        **{h.name: (h.kind | None, Field(default=None, description=h.help)) for h in FIXABLE},
    )


class ModelEntry(_FixedHyperparameters):
    """One model of the sweep with its own fixed hyperparameters, ``grid`` and/or ``points``."""

    model: ModelName
    grid: dict[str, list[HyperparameterValue]] = Field(default_factory=dict)
    """Hyperparameter -> values; every combination is a trial."""
    points: list[dict[str, HyperparameterValue]] = Field(default_factory=list)
    """Explicit rows; a row may carry ``reported: "..."``, the outcome a report wrote for it: one line of
    text (line breaks become spaces; other control characters are refused, as they would reach the
    markdown table and the terminal raw)."""

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(cls, grid: dict[str, list]) -> dict[str, list]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid axis {key!r} has no values")
            _listed_once(values, f"grid axis {key!r}: ")
        return grid

    @field_validator("points", mode="before")
    @classmethod
    def _plain_reported(cls, points: Any) -> Any:
        """Before the rows' types: a ``reported: null`` read as "reported.float: Input should be a valid number"."""
        for i, row in enumerate(points if isinstance(points, list) else []):
            if isinstance(row, dict) and "reported" in row:
                row["reported"] = _reported_text(row["reported"], i)
            if isinstance(row, dict) and (empty := [key for key, value in row.items() if value is None]):
                hint = (
                    "; in a {...} row a comma ends the value: quote reported: words that hold one"
                    if "reported" in row
                    else ""
                )
                raise ValueError(f"row {i}: {empty[0]!r} has no value{hint}")
        return points


def _reported_text(value: Any, row: int) -> str:
    """A row's ``reported:`` as one line of plain text, or the ValueError that says what it takes."""
    if not isinstance(value, str):
        what = (
            "an empty value"
            if value is None
            else f"{value!r} is a number"
            if isinstance(value, (int, float))
            else f"a {type(value).__name__}"
        )
        raise ValueError(
            f"reported of row {row}: {what}; reported takes the report's words as text in quotes, or leave it out"
        )
    text = " ".join(value.split())
    if bad := [c for c in text if not c.isprintable()]:
        raise ValueError(f"reported of row {row}: control character {bad[0]!r}; write plain text")
    if len(text) > MAX_REPORTED:
        raise ValueError(
            f"reported of row {row}: {len(text):,} characters, more than {MAX_REPORTED:,}; give the report's words for the row"
        )
    return text


class Distribution(_Strict):
    """An Optuna distribution: ``{choices: [...]}`` or ``{low, high}`` with optional ``log`` / ``step``.
    Integer bounds give an integer distribution (``suggest_int``), others a float one."""

    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list[float | int | str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Distribution:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either a non-empty `choices` list or `low` and `high`")
            if self.log or self.step is not None:
                raise ValueError("`choices` take no `log` or `step`: those shape a `low`-`high` range")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError("give `low` <= `high` (or `choices`)")
        elif self.log and self.low <= 0:
            raise ValueError("a log distribution needs low > 0")
        elif self.step is not None:
            self._check_step(self.low, self.high, self.step)
        return self

    def _check_step(self, low: float, high: float, step: float) -> None:
        """What Optuna refuses when a trial samples it (every trial of a sweep then failed, and the sweep
        exited 0), or changes without a word (a range not a whole number of steps loses its top)."""
        if not (step > 0 and math.isfinite(step)):
            raise ValueError(f"step must be a number > 0, got {step!r}")
        if self.log and not (self.is_int and step == 1):
            raise ValueError("a log distribution takes no step (Optuna samples it on the log scale); leave step out")
        if math.isfinite(low) and math.isfinite(high) and (Decimal(str(high)) - Decimal(str(low))) % Decimal(str(step)):
            raise ValueError(
                f"{low:g} to {high:g} is not a whole number of steps of {step:g} (Optuna would lower high to the "
                "last step below it); give a high that low plus whole steps reaches"
            )

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a validated range distribution."""
        if self.low is None or self.high is None:
            raise ValueError("a `choices` distribution has no bounds")
        return self.low, self.high

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high)) and not isinstance(self.step, float)


class Objective(_Strict):
    """What Optuna optimises: a metric of the final epoch (which is always evaluated), by default
    ``fid_mnist``; ``d_gap`` = |D(x) - D(G(z))| needs no judge."""

    metric: str = "fid_mnist"
    direction: Literal["minimize", "maximize"] = "minimize"

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        return _one_of("metric", name, OBJECTIVE_METRICS)


class SearchConfig(_FixedHyperparameters):
    """Non-grid tuning: ``n_trials`` trials of ``model`` sampled by TPE or at random from ``space``."""

    model: ModelName
    n_trials: int = Field(ge=1)
    sampler: Literal["tpe", "random"] = "tpe"
    space: dict[str, Distribution] = Field(min_length=1)


class SweepConfig(_FixedHyperparameters):
    """The whole grid.yaml."""

    name: str
    dataset: str = DATASET
    data_dir: str = DATA_DIR
    epochs: int = Field(ge=1, le=MAXIMA["epochs"])
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = None
    device: str = "auto"
    amp: bool = False
    """bf16 autocast where it trains faster: each trial first times a few steps each way on its device
    (``trainer.AMP_STEPS``) and keeps the faster, so ``amp`` never makes a trial slower than fp32; its
    trial.json and its record in the study say which (``precision``)."""
    group_size: Literal["auto"] | Annotated[int, Field(ge=1, le=MAX_GROUP)] = GROUP_SIZE
    """Trials of one shape (``group.SHAPE``) trained together as one fused model, each still its own trial:
    ``auto`` measures, per shape, whether groups of 2, 4 or 8 train more images/s than the trials one by one
    on the worker's device, and uses the largest that did (1 where none did); N forces groups of up to N;
    1 trains each trial on its own."""
    eval_every: int = Field(default=EVAL_EVERY, ge=1)
    """Compute sample metrics every N epochs (and always at the last epoch)."""
    eval_samples: int = Field(default=EVAL_SAMPLES, ge=100, le=MAX_EVAL_SAMPLES)
    """Generated samples per evaluation (the noise thresholds in ``flags.py`` were measured at 256)."""
    # A Literal of a tuple's values is fine for pydantic, opaque to mypy (Literal[*BAD_FLAGS] needs 3.11).
    early_stop: Literal["auto"] | list[Literal[BAD_FLAGS]] = AUTO  # type: ignore[valid-type,assignment]
    """``auto``: stop a trial that cannot recover (a D-loss collapse with collapsed samples, stuck:
    ``flags.hopeless``); a list of flags: stop as soon as one of them stands; ``[]``: never stop early.
    With ``search:``, Optuna prunes a stopped trial."""
    snapshot_every: int = Field(default=10, ge=1)
    """Sample grids are drawn at epoch 0, every N epochs and the last (the GIF has every epoch)."""
    checkpoint_every: int = Field(default=1, ge=1)
    """Save a resumable checkpoint every N epochs (an interrupted trial restarts from the last one)."""
    models: list[ModelEntry] = Field(default_factory=list)
    search: SearchConfig | None = None
    objective: Objective = Field(default_factory=Objective)
    max_trials: int = Field(default=MAX_TRIALS, ge=1, le=MAX_TRIALS_CEILING)
    """The most trials the file may plan (grid points and rows times seeds, plus ``search.n_trials``);
    raise it for a larger sweep."""

    @field_validator("group_size", mode="before")
    @classmethod
    def _group_size_form(cls, value: Any) -> Any:
        """Its own message: pydantic's for the union names only its first branch ("Input should be 'auto'")."""
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value == GROUP_SIZE or (whole and 1 <= value <= MAX_GROUP):
            return value
        shown = "an empty value" if value is None else repr(value)
        raise ValueError(
            f"{shown} is not a group size: give auto, or a whole number from 1 to {MAX_GROUP} (1: each trial on its own)"
        )

    @field_validator("early_stop", mode="before")
    @classmethod
    def _early_stop_form(cls, value: Any) -> Any:
        """Its own message: pydantic's for the union names only its first branch ("Input should be 'auto'")."""
        if value == AUTO or (isinstance(value, list) and all(isinstance(v, str) and v in BAD_FLAGS for v in value)):
            return value
        if isinstance(value, list):
            wrong = next(v for v in value if not (isinstance(v, str) and v in BAD_FLAGS))
            why = "only a bad flag can stop a trial" if wrong in FLAG_NAMES else "not a flag"
            raise ValueError(f"{wrong!r} in the list: {why}; the list takes {', '.join(BAD_FLAGS)}")
        hint = f", e.g. [{value}]" if value in BAD_FLAGS else f", e.g. [{BAD_FLAGS[1]}, {BAD_FLAGS[0]}]"
        shown = "an empty value" if value is None else repr(value)
        raise ValueError(
            f"{shown} is neither auto nor a list: give auto, [] (never stop early), or a list of the flags "
            f"that stop a trial ({', '.join(BAD_FLAGS)}){hint}"
        )

    @field_validator("seeds")
    @classmethod
    def _seeds_once(cls, seeds: list[int] | None) -> list[int] | None:
        _listed_once(seeds or [])
        return seeds

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        problem = name_problem(name)
        if problem:
            raise ValueError(problem)
        return name

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        return _one_of("dataset", name, DATASETS)

    @field_validator("data_dir")
    @classmethod
    def _a_path(cls, folder: str) -> str:
        """A path this machine can hold (a NUL in it ended the sweep in "ValueError: embedded null byte")."""
        if problem := path_problem(folder):
            raise ValueError(problem)
        return folder

    @model_validator(mode="after")
    def _one_seed_form(self) -> SweepConfig:
        if not self.models and self.search is None:
            raise ValueError("nothing to run: give `models:` (grids and points) and/or `search:`")
        if self.seed is not None and self.seeds is not None:
            raise ValueError("give either seed or seeds, not both")
        if self.seeds is not None and not self.seeds:
            raise ValueError("seeds must list at least one seed")
        if self.n_planned > self.max_trials:
            raise ValueError(
                f"this file plans {self.n_planned:,} trials, more than max_trials ({self.max_trials:,}); "
                f"shrink the grid, or raise max_trials if you mean it"
            )
        return self

    @property
    def n_planned(self) -> int:
        """Trials the file plans, counted without expanding the grids (repeated points counted twice)."""
        grids = sum(math.prod(len(v) for v in m.grid.values()) for m in self.models if m.grid)
        rows = grids + sum(len(m.points) for m in self.models)
        return rows * len(self.seed_list) + self.n_search

    @property
    def seed_list(self) -> list[int]:
        return self.seeds or [self.seed or 0]

    @property
    def n_search(self) -> int:
        """Trials of ``search:`` (0 without one)."""
        return self.search.n_trials if self.search is not None else 0


@dataclass(frozen=True)
class TrialPlan:
    """One trial of the sweep: a model, its resolved hyperparameters and a seed, with a stable key."""

    model: str
    hp: Hyperparameters
    seed: int
    dataset: str
    reported: str | None
    index: int
    """Position in the file's order (grid rows first, then points, per model)."""

    @property
    def key(self) -> str:
        """``dataset:model:k=v,...:seed=N`` over the resolved hyperparameters: equal settings, equal key."""
        params = ",".join(f"{k}={v}" for k, v in sorted(self.hp.as_params().items()))
        return f"{self.dataset}:{self.model}:{params}:seed={self.seed}"

    @property
    def label(self) -> str:
        """``model lr=... bs=... z=... seed=...``: how progress lines and tables name the point."""
        hp = self.hp
        lr = f"lr={hp.lr_g:g}" if hp.lr_g == hp.lr_d else f"lr_g={hp.lr_g:g} lr_d={hp.lr_d:g}"
        return f"{self.model} {lr} bs={hp.batch_size} z={hp.latent_dim} seed={self.seed}"

    @property
    def short_key(self) -> str:
        return hashlib.sha1(self.key.encode()).hexdigest()[:12]

    def as_row(self) -> dict[str, Any]:
        return {
            "model": self.model,
            **self.hp.as_params(),
            "seed": self.seed,
            "reported": self.reported,
            "key": self.key,
        }


UNGROUPED = "search: trials are never grouped (each samples its point once it is claimed)"
"""Why a file with no ``models:`` has nothing to group."""


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> SweepConfig:
    """Reads and validates a grid.yaml, with ``overrides`` (``--set FIELD=VALUE``) over its fields; raises
    ``ConfigError`` naming file, line and field (or the ``--set`` and the field)."""
    path = Path(path)
    node, raw = parse(read_text(path), path)
    try:
        check_nodes(node, path)
    except RecursionError:  # an alias inside its own anchor (`a: &x [*x]`) never ends
        raise ConfigError(f"{path}: an alias refers to a value that contains it; write the values out") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (name, dataset, epochs, models, ...)")
    given_once(overrides)
    overridden = {override(raw, text): text for text in overrides}
    raw.setdefault("name", path.stem)
    try:
        config = SweepConfig.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(first["loc"])
        allowed = ""
        if first["type"] == "extra_forbidden":
            owners: dict[str, type[BaseModel]] = {"models": ModelEntry, "search": SearchConfig, "objective": Objective}
            owner = next((owners[part] for part in reversed(loc) if part in owners), SweepConfig)
            if "space" in loc:
                owner = Distribution
            allowed = f"; allowed here: {', '.join(k for k in owner.model_fields)}"
        message = first["msg"].removeprefix("Value error, ")
        field = f"{dotted(loc)}: " if loc else ""
        where = f"--set {overridden[loc[0]]}" if loc and loc[0] in overridden else f"{path}:{line_of(node, loc)}"
        raise ConfigError(f"{where}: {field}{message}{allowed}") from None
    _check_models(config, path, node)
    _check_grouped(
        config,
        f"--set {overridden['group_size']}"
        if "group_size" in overridden
        else f"{path}:{line_of(node, ('group_size',))}",
    )
    _check_reported_once(config, path, node)
    _check_search(config, path, node)
    return config


def _check_grouped(config: SweepConfig, where: str) -> None:
    """A group size above 1 in a file with nothing to group (only ``search:``), refused: it was taken and ignored."""
    if not config.models and config.group_size not in (GROUP_SIZE, 1):
        raise ConfigError(f"{where}: group_size: {config.group_size} groups nothing here: {UNGROUPED}; leave it out")


def _check_reported_once(config: SweepConfig, path: Path, node: yaml.Node | None) -> None:
    """Two rows of one point (equal settings once resolved) whose ``reported:`` words differ: one trial
    trains it, and the report would show one row's words as if they were both's."""
    first: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for i, entry in enumerate(config.models):
        fixed = {**config.fixed(), **entry.fixed(), "epochs": config.epochs}
        for j, row in enumerate(entry.points):
            if row.get("reported") is None:
                continue
            try:
                hp = resolve_hyperparameters(entry.model, {**fixed, **_settings(row)}, None, config.dataset)
            except HyperparameterError:
                continue  # plan_trials names it, with its row
            key, here = TrialPlan(entry.model, hp, 0, config.dataset, None, 0).key, ("models", i, "points", j)
            words, there = first.setdefault(key, (str(row["reported"]), here))
            if words != row["reported"]:
                raise ConfigError(
                    f"{path}:{line_of(node, here)}: {dotted(here)}: the same point as {dotted(there)} on line "
                    f"{line_of(node, there)}, with other reported: words ({row['reported']!r}, there {words!r}); "
                    "one trial trains a point: give it once, with the words that belong to it"
                )


def _settings(row: dict[str, Any]) -> dict[str, Any]:
    """A ``points:`` row's hyperparameters (its ``reported:`` words left out)."""
    return {k: v for k, v in row.items() if k != "reported"}


def _check_search(config: SweepConfig, path: Path, node: yaml.Node | None) -> None:
    search = config.search
    if search is None:
        return
    allowed = allowed_hyperparameters(search.model)
    for key in [*search.space, *search.fixed()]:
        if key not in allowed:
            raise ConfigError(
                f"{path}:{line_of(node, ('search', 'space', key))}: search: model {search.model!r} does not take "
                f"hyperparameter {key!r}; it takes: {', '.join(allowed)}"
            )
    # Every value a trial may sample, checked before any trial samples one: the fixed ones, then the ends
    # of each range or each choice.
    n_train = TRAIN_SIZES.get(config.dataset)
    try:
        search_plan(config, {}, 0, n_train)
    except HyperparameterError as error:
        raise ConfigError(f"{path}:{line_of(node, ('search',))}: search: {error}") from None
    kinds = {h.name: h.kind for h in HYPERPARAMETERS}
    for key, dist in search.space.items():
        line = line_of(node, ("search", "space", key))
        if kinds[key] is int and dist.choices is None and not dist.is_int:
            raise ConfigError(f"{path}:{line}: search.space.{key}: whole numbers only; give low and high as integers")
        for value in dist.choices if dist.choices is not None else dist.bounds:
            try:
                search_plan(config, {key: value}, 0, n_train)
            except HyperparameterError as error:
                raise ConfigError(f"{path}:{line}: search.space.{key}: {value!r} cannot be sampled: {error}") from None


def _check_models(config: SweepConfig, path: Path, node: yaml.Node | None) -> None:
    for i, entry in enumerate(config.models):
        keys = set(entry.grid) | {k for row in entry.points for k in row if k != "reported"} | set(entry.fixed())
        allowed = allowed_hyperparameters(entry.model)
        for key in sorted(keys - set(allowed)):
            where = ("models", i, "grid", key) if key in entry.grid else ("models", i)
            raise ConfigError(
                f"{path}:{line_of(node, where)}: models[{i}]: model {entry.model!r} does not take "
                f"hyperparameter {key!r}; it takes: {', '.join(allowed)}"
            )
        if not entry.grid and not entry.points:
            raise ConfigError(
                f"{path}:{line_of(node, ('models', i))}: models[{i}]: empty grid: give `grid:` and/or `points:`"
            )


def plan_trials(config: SweepConfig, n_train: int | None = None, source: str = "grid.yaml") -> list[TrialPlan]:
    """Expands the config into trials, in file order, each distinct key once."""
    plans: dict[str, TrialPlan] = {}
    for i, entry in enumerate(config.models):
        fixed = {**config.fixed(), **entry.fixed(), "epochs": config.epochs}
        rows = [dict(zip(entry.grid, combo)) for combo in itertools.product(*entry.grid.values())] if entry.grid else []
        rows += entry.points
        for row in rows:
            settings = _settings(row)
            try:
                hp = resolve_hyperparameters(entry.model, {**fixed, **settings}, n_train, config.dataset)
            except HyperparameterError as error:
                raise ConfigError(f"{source}: models[{i}] ({entry.model}) {json.dumps(settings)}: {error}") from None
            for seed in config.seed_list:
                reported = None if row.get("reported") is None else str(row["reported"])
                plan = TrialPlan(entry.model, hp, seed, config.dataset, reported, len(plans))
                known = plans.setdefault(plan.key, plan)
                if plan.reported and not known.reported:  # a report row that repeats a grid point
                    plans[plan.key] = replace(known, reported=plan.reported)
    return list(plans.values())


def suggest_plan(config: SweepConfig, trial: Any, index: int) -> TrialPlan:
    """Samples ``config.search.space`` through an Optuna trial and resolves the result."""
    search = config.search
    assert search is not None
    chosen: dict[str, Any] = {}
    for name, dist in search.space.items():
        if dist.choices is not None:
            chosen[name] = trial.suggest_categorical(name, dist.choices)
        elif dist.is_int:
            low, high = dist.bounds
            chosen[name] = trial.suggest_int(name, int(low), int(high), step=int(dist.step or 1), log=dist.log)
        else:
            chosen[name] = trial.suggest_float(name, *dist.bounds, step=dist.step, log=dist.log)
    return search_plan(config, chosen, index)


def search_plan(config: SweepConfig, chosen: dict[str, Any], index: int, n_train: int | None = None) -> TrialPlan:
    """The search's model with ``chosen`` values over the fixed ones (none chosen: what a trial of it
    costs before it is sampled); ``n_train`` bounds ``batch_size`` when given."""
    search = config.search
    assert search is not None
    given = {**config.fixed(), **search.fixed(), "epochs": config.epochs, **chosen}
    hp = resolve_hyperparameters(search.model, given, n_train, config.dataset)
    return TrialPlan(search.model, hp, config.seed_list[0], config.dataset, None, index)
