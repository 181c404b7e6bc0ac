"""Each hyperparameter is written once, in options.HYPERPARAMETERS: grid.yaml's schema and the CLI's flags follow it."""

from __future__ import annotations

from gansweep.cli import build_parser
from gansweep.config import ModelEntry, SearchConfig, SweepConfig
from gansweep.hparams import COMMON_HYPERPARAMETERS, Hyperparameters, resolve_hyperparameters
from gansweep.options import HYPERPARAMETERS


def _train_flags() -> dict[str, str]:
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    return {action.dest: action.help or "" for action in train._actions}


def test_every_hyperparameter_is_a_train_flag_with_its_help() -> None:
    flags = _train_flags()
    for h in HYPERPARAMETERS:
        assert flags[h.name].startswith(h.help)
        assert (f"(default {h.default})" in flags[h.name]) == (h.default is not None)


def test_every_hyperparameter_but_epochs_can_be_fixed_at_every_level_of_grid_yaml() -> None:
    names = [h.name for h in HYPERPARAMETERS if h.name != "epochs"]
    for model in (SweepConfig, ModelEntry, SearchConfig):
        assert [name for name in model.model_fields if name in names] == names
        assert all(model.model_fields[name].description for name in names)
    assert "epochs" in SweepConfig.model_fields


def test_the_common_defaults_come_from_the_table() -> None:
    defaults = {h.name: h.default for h in HYPERPARAMETERS if h.default is not None}
    hp = resolve_hyperparameters("mlp", {})
    assert {name: getattr(hp, name) for name in defaults} == defaults
    assert set(COMMON_HYPERPARAMETERS) | {"width"} == {h.name for h in HYPERPARAMETERS}
    assert {"lr_g", "lr_d"} <= set(Hyperparameters.__dataclass_fields__)
