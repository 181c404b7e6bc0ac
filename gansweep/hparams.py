"""Trial hyperparameters resolved for one model: the given values over the model's defaults, checked.

Their names, types, help and common defaults are ``options.HYPERPARAMETERS``; the ranges are checked here.

Example:
    >>> from gansweep.hparams import resolve_hyperparameters
    >>> hp = resolve_hyperparameters("dcgan28", {"lr": "2e-4", "batch_size": 128, "width": 32})
    >>> hp.lr_g, hp.lr_d, hp.batch_size, hp.width, hp.loss
    (0.0002, 0.0002, 128, 32, 'bce')

Edge cases: ``lr`` sets both learning rates and ``lr_g``/``lr_d`` override it; a model's own defaults
fill the rest. A key the model does not take, or a value out of range, raises ``HyperparameterError``
whose message names the field and what is allowed, before anything is trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from gansweep.errors import GansweepError
from gansweep.losses import LOSSES
from gansweep.models import MODELS
from gansweep.options import HYPERPARAMETERS

COMMON_HYPERPARAMETERS = tuple(h.name for h in HYPERPARAMETERS if h.every_model)
_DEFAULTS = {h.name: h.default for h in HYPERPARAMETERS if h.default is not None}
"""Defaults no model overrides (loss, d_steps); a model's own defaults come first."""
MAX_LR = 1e30
"""Learning rates live in float32 on the device (largest 3.4e38): above this one turns into inf or an
overflow error instead of the "diverged at epoch 1" it should be reported as."""
MAXIMA = {"epochs": 10_000, "latent_dim": 10_000, "d_steps": 100, "width": 1024}
"""Sizes beyond any report's (their largest: 200 epochs, z 100, 5 D steps, width 128) by far, that
still fit in memory: past them a typo trains for days or dies of out-of-memory inside a trial."""


class HyperparameterError(GansweepError, ValueError):
    """An unknown, unsupported or out-of-range hyperparameter; the message names the field."""


@dataclass(frozen=True)
class Hyperparameters:
    """Everything that shapes one trial's training, resolved against the model's defaults: the
    entries of ``options.HYPERPARAMETERS``, with ``lr`` resolved into ``lr_g`` and ``lr_d``."""

    lr_g: float
    lr_d: float
    batch_size: int
    latent_dim: int
    betas: tuple[float, float]
    epochs: int
    loss: str
    d_steps: int
    width: int | None = None
    """None for the models that have no width."""

    def as_params(self) -> dict[str, Any]:
        """Flat, loggable form (betas as two numbers, no Nones)."""
        params = {k: v for k, v in asdict(self).items() if v is not None}
        params["beta1"], params["beta2"] = params.pop("betas")
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Hyperparameters:
        """The inverse of ``as_params``."""
        rest = {k: v for k, v in params.items() if k not in ("beta1", "beta2")}
        return cls(**rest, betas=(params["beta1"], params["beta2"]))


def _number(field: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise HyperparameterError(f"{field} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise HyperparameterError(f"{field} must be a number, got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise HyperparameterError(f"{field} must be a whole number, got {value!r}")
        return int(number)
    return number


def _at_least(field: str, value: Any, kind: type, low: float) -> Any:
    number = _number(field, value, kind)
    if not math.isfinite(number) or number < low:
        raise HyperparameterError(f"{field} must be >= {low:g}, got {value!r}")
    if number > MAXIMA.get(field, math.inf):
        raise HyperparameterError(f"{field} must be at most {MAXIMA[field]:,}, got {_shown(value)}")
    return number


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _learning_rate_value(field: str, value: Any) -> float:
    number = _number(field, value, float)
    if math.isnan(number) or number <= 0:
        raise HyperparameterError(f"{field} must be > 0, got {value!r}")
    if number > MAX_LR:  # inf included: "must be > 0, got inf" said what it is not
        raise HyperparameterError(f"{field} must be at most {MAX_LR:g} (float32 on the device), got {value!r}")
    return number


def _betas(value: Any) -> tuple[float, float]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise HyperparameterError(f"betas must be two numbers like [0.5, 0.999], got {value!r}")
    betas = tuple(_number("betas", b, float) for b in value)
    if not all(0 <= b < 1 for b in betas):
        raise HyperparameterError(f"betas must each be in [0, 1), got {value!r}")
    return betas[0], betas[1]


def _learning_rate(side: str, given: Mapping[str, float], defaults: Mapping[str, Any]) -> float:
    """``lr_g`` or ``lr_d``: given for that side, else the given ``lr``, else the model's default."""
    for source in (given, defaults):
        for key in (side, "lr"):
            if key in source:
                return float(source[key])
    raise HyperparameterError(f"{side}: no value given and no model default")


def allowed_hyperparameters(model: str) -> tuple[str, ...]:
    return COMMON_HYPERPARAMETERS + tuple(sorted(MODELS[model].extra_hyperparameters))


def resolve_hyperparameters(
    model: str, given: Mapping[str, Any], n_train: int | None = None, dataset: str = "the data set"
) -> Hyperparameters:
    """Merges ``given`` over the model's defaults and checks every value.

    ``n_train`` (the training split's size) bounds ``batch_size`` when known.
    """
    if model not in MODELS:
        raise HyperparameterError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    allowed = allowed_hyperparameters(model)
    for key in given:
        if key not in allowed:
            raise HyperparameterError(
                f"model {model!r} does not take hyperparameter {key!r}; it takes: {', '.join(allowed)}"
            )
    given = {k: v for k, v in given.items() if v is not None}
    merged = {**_DEFAULTS, **MODELS[model].defaults, **given}
    lrs: dict[str, float] = {
        key: _learning_rate_value(key, given[key]) for key in ("lr", "lr_g", "lr_d") if key in given
    }
    lr_g, lr_d = (_learning_rate(side, lrs, MODELS[model].defaults) for side in ("lr_g", "lr_d"))
    batch_size = _at_least("batch_size", merged["batch_size"], int, 1)
    if n_train is not None and batch_size > n_train:
        raise HyperparameterError(
            f"batch_size must be at most {n_train} (the training split of {dataset}), got {batch_size}"
        )
    loss = merged["loss"]
    if loss not in LOSSES:
        raise HyperparameterError(f"loss must be one of: {', '.join(LOSSES)}; got {loss!r}")
    width = merged.get("width")
    return Hyperparameters(
        lr_g=lr_g,
        lr_d=lr_d,
        batch_size=batch_size,
        latent_dim=_at_least("latent_dim", merged["latent_dim"], int, 1),
        betas=_betas(merged["betas"]),
        epochs=_at_least("epochs", merged["epochs"], int, 1),
        loss=loss,
        d_steps=_at_least("d_steps", merged["d_steps"], int, 1),
        width=None if width is None else _at_least("width", width, int, 1),
    )
