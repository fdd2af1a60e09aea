"""YAML files as plain dicts and lists that remember where each value was written, so
that every error names `file:line`. Parameters (`${name}`) are filled in here, from the
--params files, and any error is collected: nothing is applied from a broken file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portcullis_cli.client import CliError

_PARAMETER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


@dataclass(frozen=True)
class Where:
    file: str
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Located(dict):
    """A mapping with the place of itself (`where`) and of each of its keys' values."""

    where: Where
    key_where: dict[str, Where]


class LocatedList(list):
    where: Where
    item_where: list[Where]


@dataclass
class Problems:
    """Every error found in the files, each with its place: reported all at once."""

    items: list[tuple[Where | None, str]] = field(default_factory=list)

    def add(self, where: Where | None, message: str) -> None:
        self.items.append((where, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidFiles(self)


class InvalidFiles(CliError):
    def __init__(self, problems: Problems) -> None:
        lines = [f"{where}: {message}" if where else message for where, message in problems.items]
        super().__init__("the files are not valid, nothing was changed:\n  " + "\n  ".join(lines))
        self.problems = problems


# Constructs one scalar node at a time (ints, bools, dates as YAML 1.1 says, like safe_load).
_SCALARS = yaml.SafeLoader("")


def _where(name: str, node: yaml.Node) -> Where:
    return Where(name, node.start_mark.line + 1)


def _convert(node: yaml.Node, name: str, params: Mapping[str, Any], problems: Problems) -> Any:
    if isinstance(node, yaml.MappingNode):
        result = Located()
        result.where, result.key_where = _where(name, node), {}
        for key_node, value_node in node.value:
            key = _convert(key_node, name, params, problems)
            if not isinstance(key, str):
                problems.add(_where(name, key_node), f"keys must be strings, not {key!r}")
                continue
            if key in result:
                problems.add(_where(name, key_node), f"{key!r} is given twice")
            result[key] = _convert(value_node, name, params, problems)
            result.key_where[key] = _where(name, value_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = LocatedList()
        items.where, items.item_where = _where(name, node), []
        for item in node.value:
            items.append(_convert(item, name, params, problems))
            items.item_where.append(_where(name, item))
        return items
    assert isinstance(node, yaml.ScalarNode)
    scalar = _SCALARS.construct_object(node, deep=True)
    if isinstance(scalar, str) and "${" in scalar:
        return _substitute(scalar, _where(name, node), params, problems)
    return scalar


def _substitute(text: str, where: Where, params: Mapping[str, Any], problems: Problems) -> Any:
    whole = _PARAMETER.fullmatch(text)
    if whole:  # `${port}` alone keeps the parameter's own type
        if whole.group(1) not in params:
            problems.add(where, f"no parameter {whole.group(1)!r} (give it in a --params file)")
            return text
        return params[whole.group(1)]

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in params:
            problems.add(where, f"no parameter {match.group(1)!r} (give it in a --params file)")
            return match.group(0)
        return str(params[match.group(1)])

    return _PARAMETER.sub(fill, text)


def load_yaml(path: Path, params: Mapping[str, Any], problems: Problems) -> Any:
    name = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        problems.add(None, f"{name}: cannot read it: {exc.strerror}")
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Where(name, mark.line + 1) if mark else None
        problems.add(where, f"not valid YAML: {exc.problem or exc.context}")
        return None
    except yaml.YAMLError as exc:
        problems.add(None, f"{name}: not valid YAML: {exc}")
        return None
    if node is None:
        return None
    return _convert(node, name, params, problems)


def load_params(paths: list[Path], environment: str | None) -> dict[str, Any]:
    """`--params` files: a mapping of names to values, or `environments: {dev: {...}}`
    picked with --environment; later files win."""
    params: dict[str, Any] = {}
    problems = Problems()
    for path in paths:
        data = load_yaml(path, {}, problems)
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.add(getattr(data, "where", None), "a params file is a mapping of names to values")
            continue
        if "environments" in data:
            environments = data["environments"]
            if environment is None:
                problems.add(data.key_where["environments"], "this params file has environments: pick one "
                             "with --environment")
                continue
            if not isinstance(environments, dict) or environment not in environments:
                problems.add(data.key_where["environments"], f"no environment {environment!r} here")
                continue
            common = {k: v for k, v in data.items() if k != "environments"}
            params.update(common)
            params.update(environments[environment])
        else:
            params.update(data)
    problems.raise_if_any()
    return params


def yaml_files(target: Path) -> list[Path]:
    """FILE itself, or every *.yaml / *.yml of DIR (not recursive), in name order."""
    if target.is_dir():
        return sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [target]
