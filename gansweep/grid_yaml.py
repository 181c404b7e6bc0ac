"""A grid.yaml as a file and as YAML nodes, checked before its settings are: its size and encoding, its
syntax, keys given twice, yes/no values where they do not belong, numbers past a float, aliases that
expand a small file into millions of values. Each error names the file and line (``line_of``) and the
field (``dotted``), as ``config.load_config``'s do. A ``--set FIELD=VALUE`` is read as such a file of one
field (``override``).
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gansweep.diagnostics.flags import BAD_FLAGS
from gansweep.errors import GansweepError
from gansweep.options import HYPERPARAMETERS, overflows

MAX_GRID_BYTES = 1_000_000
"""The largest grid.yaml read: the shipped grids are under 2 KB, while a 50 MB file took 155 s and 3.6 GB
to parse before failing (measured for issue 15)."""
MAX_VALUES = 100_000
"""Values a grid.yaml may hold once its aliases are expanded (a real one holds under 1,000)."""
BOOLEANS = {("amp",), ("search", "space", "*", "log")}
"""The only places a YAML ``true``/``false`` belongs: elsewhere pydantic would read it as 1 or 0."""


class ConfigError(GansweepError):
    """A grid.yaml that cannot be read or does not validate."""


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
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


def dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")


def read_text(path: Path) -> str:
    """The file as text: UTF-8 (a BOM allowed), at most ``MAX_GRID_BYTES``."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_GRID_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    if len(data) > MAX_GRID_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_GRID_BYTES:,} bytes; a grid.yaml is a few KB of settings")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte {data[error.start]:#04x}); save the file as UTF-8"
        ) from None


def parse(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        return node, yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        position = getattr(error, "position", None)  # a character YAML does not allow (ReaderError)
        line = mark.line + 1 if mark else None if position is None else text.count("\n", 0, position) + 1
        where = f"{path}:{line}" if line else str(path)
        problem = str(getattr(error, "problem", None) or error).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except RecursionError:  # PyYAML composes recursively; thousands of nested brackets exhaust the stack
        raise ConfigError(f"{path}: not valid YAML: nested too deeply for a grid.yaml") from None


def _nodes(node: yaml.Node | None, loc: tuple[Any, ...] = ()):
    """(location, node) of every node, depth first (the location as pydantic writes it)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield (*loc, key.value), value
            yield from _nodes(value, (*loc, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            yield (*loc, i), value
            yield from _nodes(value, (*loc, i))


def check_nodes(node: yaml.Node | None, path: Path) -> None:
    """A key given twice (YAML keeps the last silently), true/false where a number belongs, and
    aliases that expand a small file into millions of values."""
    for count, (loc, value) in enumerate(itertools.chain([((), node)], _nodes(node))):
        if count > MAX_VALUES:
            raise ConfigError(f"{path}: expands to more than {MAX_VALUES:,} values (YAML aliases?); write them out")
        if isinstance(value, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key, _ in value.value:
                if not isinstance(key, yaml.ScalarNode):
                    raise ConfigError(f"{path}:{key.start_mark.line + 1}: {dotted(loc)}: a key must be a plain name")
                if key.value in first:
                    raise ConfigError(
                        f"{path}:{key.start_mark.line + 1}: {dotted((*loc, key.value))}: given twice "
                        f"(first on line {first[key.value]}); give each key once"
                    )
                first[key.value] = key.start_mark.line + 1
        elif value is not None and value.tag == "tag:yaml.org,2002:bool" and not _boolean_allowed(loc):
            raise ConfigError(
                f"{path}:{value.start_mark.line + 1}: {dotted(loc)}: {value.value!r} is a yes/no value, "
                + YES_NO_HINTS[_kind(loc)]
            )
        elif isinstance(value, yaml.ScalarNode) and _kind(loc) == "number" and overflows(value.value):
            raise ConfigError(
                f"{path}:{value.start_mark.line + 1}: {dotted(loc)}: {value.value} is past the largest number a "
                f"float holds ({sys.float_info.max:.3g}), which reads it as inf"
            )


def _boolean_allowed(loc: tuple[Any, ...]) -> bool:
    return any(len(loc) == len(a) and all(x in ("*", y) for x, y in zip(a, loc)) for a in BOOLEANS)


NUMBERS = {h.name for h in HYPERPARAMETERS if h.kind is not str} | {
    "epochs",
    "seed",
    "seeds",
    "eval_every",
    "eval_samples",
    "snapshot_every",
    "checkpoint_every",
    "max_trials",
    "n_trials",
    "low",
    "high",
    "step",
}
"""Keys whose values are numbers (a ``search.space`` entry's ``choices`` are its hyperparameter's kind)."""
TEXTS = {"name", "dataset", "data_dir", "device", "model", "reported", "metric", "direction", "sampler", "loss"}
YES_NO_HINTS = {
    "number": "not a number; give a number",
    "text": "not a name; quote it if you mean the text",
    "early_stop": "not a setting of early_stop: give auto, [] (never stop early), or a list of the flags that "
    f"stop a trial ({', '.join(BAD_FLAGS)})",
    "other": "not a number or a name; quote it if you mean the text",
}
"""What to write instead of true/false, by what the key takes: "quote it" sent early_stop: false and
batch_size: true to a second refusal of the quoted text."""


def _kind(loc: tuple[Any, ...]) -> str:
    """number, text or early_stop: what the value at ``loc`` must be; other for a key gansweep does not know."""
    names = [part for part in loc if isinstance(part, str)]
    if names[:2] == ["search", "space"] and len(names) > 2 and names[-1] in ("choices", names[2]):
        names = names[:3]  # a choice is a value of the hyperparameter
    name = names[-1] if names else ""
    return (
        "early_stop" if name == "early_stop" else "number" if name in NUMBERS else "text" if name in TEXTS else "other"
    )


SET = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)=(.*)", re.S)
"""``--set FIELD=VALUE``: a field of the file, or one inside a mapping of it (``objective.metric=d_gap``)."""


def override(raw: dict[str, Any], text: str) -> str:
    """Applies ``--set FIELD=VALUE`` to the file's settings, its value read as the file's YAML is and checked
    the same way; returns the top-level field it sets."""
    match = SET.fullmatch(text)
    where = f"--set {text}"
    if match is None:
        raise ConfigError(f"{where}: give FIELD=VALUE, a field of the grid file, e.g. --set epochs=2")
    keys, value = match[1].split("."), match[2]
    document = (
        "".join(f"{'  ' * i}{key}:\n" for i, key in enumerate(keys[:-1]))
        + f"{'  ' * (len(keys) - 1)}{keys[-1]}: {value}"
    )
    try:
        node, parsed = parse(document, Path(where))
        check_nodes(node, Path(where))
    except ConfigError as error:  # its line is the value's own
        raise ConfigError(re.sub(rf"^{re.escape(where)}:\d+:", f"{where}:", str(error))) from None
    target = raw
    for key in keys[:-1]:
        if not isinstance(target.setdefault(key, {}), dict):
            raise ConfigError(f"{where}: {key} is not a mapping of fields; set {key} itself")
        target, parsed = target[key], parsed[key]
    target[keys[-1]] = parsed[keys[-1]]
    return keys[0]


def given_once(overrides: Sequence[str]) -> None:
    """Each field is set once: a second ``--set`` of it (or of a field inside it) would replace the first
    silently, as YAML keeps the last of a key given twice."""
    given: dict[str, str] = {}
    for text in overrides:
        match = SET.fullmatch(text)
        if match is None:
            continue  # override names it
        field = match[1]
        for earlier, first in given.items():
            if field == earlier or field.startswith(f"{earlier}.") or earlier.startswith(f"{field}."):
                raise ConfigError(f"--set {text}: {field} given twice (first --set {first}); give each field once")
        given[field] = text
