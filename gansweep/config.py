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

Every error names the file, the line and the field, and what is allowed. Unknown keys are rejected.
Numbers such as ``2e-4`` (which YAML 1.1 reads as text) are accepted as numbers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, replace
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

from gansweep.data import DATASETS
from gansweep.diagnostics.evaluate import EVAL_EVERY, EVAL_SAMPLES
from gansweep.diagnostics.flags import BAD_FLAGS
from gansweep.diagnostics.metrics import METRICS
from gansweep.errors import GansweepError
from gansweep.hparams import HyperparameterError, Hyperparameters, allowed_hyperparameters, resolve_hyperparameters
from gansweep.models import MODELS
from gansweep.options import DATA_DIR, DATASET, HYPERPARAMETERS, name_problem
from gansweep.trainer import NORM_METRICS, STEP_METRICS

OBJECTIVE_METRICS = ("fid_mnist", "d_gap", *METRICS, *STEP_METRICS, *NORM_METRICS)


class ConfigError(GansweepError):
    """A grid.yaml that cannot be read or does not validate."""


HyperparameterValue = float | int | str | list[float]
"""A grid value: a number, a loss name, or a pair of betas."""


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
    """Explicit rows; a row may carry ``reported: "..."``, the outcome a report wrote for it."""

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(cls, grid: dict[str, list]) -> dict[str, list]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid axis {key!r} has no values")
        return grid


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
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError("give `low` <= `high` (or `choices`)")
        elif self.log and self.low <= 0:
            raise ValueError("a log distribution needs low > 0")
        return self

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
    epochs: int = Field(ge=1)
    seed: int | None = None
    seeds: list[int] | None = None
    device: str = "auto"
    amp: bool = False
    eval_every: int = Field(default=EVAL_EVERY, ge=1)
    """Compute sample metrics every N epochs (and always at the last epoch)."""
    eval_samples: int = Field(default=EVAL_SAMPLES, ge=100)
    """Generated samples per evaluation (the noise thresholds in ``flags.py`` were measured at 256)."""
    # A Literal of a tuple's values is fine for pydantic, opaque to mypy (Literal[*BAD_FLAGS] needs 3.11).
    early_stop: list[Literal[BAD_FLAGS]] = Field(default_factory=list)  # type: ignore[valid-type]
    """Stop a trial as soon as one of these flags is raised (with ``search:``, Optuna prunes it)."""
    snapshot_every: int = Field(default=10, ge=1)
    """Sample grids are drawn at epoch 0, every N epochs and the last (the GIF has every epoch)."""
    checkpoint_every: int = Field(default=1, ge=1)
    """Save a resumable checkpoint every N epochs (an interrupted trial restarts from the last one)."""
    models: list[ModelEntry] = Field(default_factory=list)
    search: SearchConfig | None = None
    objective: Objective = Field(default_factory=Objective)

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

    @model_validator(mode="after")
    def _one_seed_form(self) -> SweepConfig:
        if not self.models and self.search is None:
            raise ValueError("nothing to run: give `models:` (grids and points) and/or `search:`")
        if self.seed is not None and self.seeds is not None:
            raise ValueError("give either seed or seeds, not both")
        if self.seeds is not None and not self.seeds:
            raise ValueError("seeds must list at least one seed")
        return self

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


_SHORT = {"batch_size": "bs", "latent_dim": "z"}


def run_names(plans: list[TrialPlan]) -> dict[str, str]:
    """Key -> a short name that tells the plan from the others of its model: the model and the settings
    that vary among them (``dcgan28 lr=0.0002 bs=64``); MLflow's runs table cuts long names."""
    names = {}
    for model in dict.fromkeys(p.model for p in plans):
        group = [p for p in plans if p.model == model]
        one_lr = all(p.hp.lr_g == p.hp.lr_d for p in group)
        values = [_named_settings(p, one_lr) for p in group]
        varying = [k for k in values[0] if len({v[k] for v in values}) > 1]
        for plan, v in zip(group, values):
            names[plan.key] = " ".join([model, *(f"{_SHORT.get(k, k)}={v[k]}" for k in varying)])
    return names


def _named_settings(plan: TrialPlan, one_lr: bool) -> dict[str, str]:
    params = plan.hp.as_params()
    lrs = {"lr": params["lr_g"]} if one_lr else {"lr_g": params["lr_g"], "lr_d": params["lr_d"]}
    rest = {k: v for k, v in params.items() if k not in ("lr_g", "lr_d", "beta1", "beta2")}
    settings = {**lrs, **rest, "betas": f"{params['beta1']:g},{params['beta2']:g}", "seed": plan.seed}
    return {k: f"{v:g}" if isinstance(v, float) else str(v) for k, v in settings.items()}


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at a pydantic error location (deepest node found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == part]
            if not match:
                break
            node = match[0][1]
            line = match[0][0].start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")


def load_config(path: str | Path) -> SweepConfig:
    """Reads and validates a grid.yaml; raises ``ConfigError`` naming file, line and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (name, dataset, epochs, models, ...)")
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
        field = f"{_field(loc)}: " if loc else ""
        raise ConfigError(f"{path}:{_line_of(node, loc)}: {field}{message}{allowed}") from None
    _check_models(config, path, node)
    _check_search(config, path, node)
    return config


def _check_search(config: SweepConfig, path: Path, node: yaml.Node | None) -> None:
    search = config.search
    if search is None:
        return
    allowed = allowed_hyperparameters(search.model)
    for key in [*search.space, *search.fixed()]:
        if key not in allowed:
            raise ConfigError(
                f"{path}:{_line_of(node, ('search', 'space', key))}: search: model {search.model!r} does not take "
                f"hyperparameter {key!r}; it takes: {', '.join(allowed)}"
            )


def _check_models(config: SweepConfig, path: Path, node: yaml.Node | None) -> None:
    for i, entry in enumerate(config.models):
        keys = set(entry.grid) | {k for row in entry.points for k in row if k != "reported"} | set(entry.fixed())
        allowed = allowed_hyperparameters(entry.model)
        for key in sorted(keys - set(allowed)):
            where = ("models", i, "grid", key) if key in entry.grid else ("models", i)
            raise ConfigError(
                f"{path}:{_line_of(node, where)}: models[{i}]: model {entry.model!r} does not take "
                f"hyperparameter {key!r}; it takes: {', '.join(allowed)}"
            )
        if not entry.grid and not entry.points:
            raise ConfigError(
                f"{path}:{_line_of(node, ('models', i))}: models[{i}]: empty grid: give `grid:` and/or `points:`"
            )


def plan_trials(config: SweepConfig, n_train: int | None = None, source: str = "grid.yaml") -> list[TrialPlan]:
    """Expands the config into trials, in file order, each distinct key once."""
    plans: dict[str, TrialPlan] = {}
    for i, entry in enumerate(config.models):
        fixed = {**config.fixed(), **entry.fixed(), "epochs": config.epochs}
        rows = [dict(zip(entry.grid, combo)) for combo in itertools.product(*entry.grid.values())] if entry.grid else []
        rows += entry.points
        for row in rows:
            settings = {k: v for k, v in row.items() if k != "reported"}
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
    given = {**config.fixed(), **search.fixed(), "epochs": config.epochs, **chosen}
    hp = resolve_hyperparameters(search.model, given, None, config.dataset)
    return TrialPlan(search.model, hp, config.seed_list[0], config.dataset, None, index)
