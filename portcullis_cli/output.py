"""Answers for people (rich tables) and for scripts (`-o json|yaml`, `-o value:PATH`).

Values shown once (a new API key, a consumer secret) are the answer's top-level string
fields named `value` or ending in `secret`: they stay in the JSON and YAML answers
(scripts capture them from stdout), are marked in tables, and a note on stderr says
that they cannot be read again.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import yaml
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from rich.console import Console
from rich.table import Table
from rich.text import Text

from portcullis_cli.client import CliError
from portcullis_cli.fields import is_scalar

FORMATS = ("table", "json", "yaml")
TABLE_COLUMNS = 8
# Shown in lists only when nothing better fills the columns.
_LOW_PRIORITY = ("organization_id", "created_at", "updated_at")


def secret_fields(descriptor: Descriptor) -> list[str]:
    return [f.name for f in descriptor.fields
            if f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated
            and (f.name == "value" or f.name.endswith("secret"))]


def list_columns(item: Descriptor) -> list[str]:
    names = [f.name for f in item.fields if is_scalar(f) and not f.name.endswith("_set")]
    first = [n for n in names if n not in _LOW_PRIORITY]
    return (first + [n for n in names if n in _LOW_PRIORITY])[:TABLE_COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def dig(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise CliError(f"-o value:{path}: the answer has no {part!r}")
    return value


class Printer:
    def __init__(self, output: str) -> None:
        if output not in FORMATS and not output.startswith("value:"):
            raise click.BadParameter(f"expected one of {', '.join(FORMATS)} or value:PATH", param_hint="-o")
        self.output = output
        # Piped output keeps whole rows (no terminal width to fit).
        self.console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 250)

    def data(self, value: Any) -> bool:
        """Print `value` as json, yaml or value:PATH; False when a table is wanted."""
        if self.output == "json":
            click.echo(json.dumps(value, indent=2))
        elif self.output == "yaml":
            click.echo(yaml.safe_dump(value, sort_keys=False, allow_unicode=True), nl=False)
        elif self.output.startswith("value:"):
            picked = dig(value, self.output.removeprefix("value:"))
            click.echo(picked if isinstance(picked, str) else json.dumps(picked))
        else:
            return False
        return True

    def items(self, items: list[dict[str, Any]], item: Descriptor) -> None:
        if self.data(items):
            return
        columns = list_columns(item)
        table = Table(*[c.upper().replace("_", " ") for c in columns], box=None, header_style="bold")
        for row in items:
            table.add_row(*(Text(_cell(row.get(c))) for c in columns))
        self.console.print(table)

    def one(self, answer: dict[str, Any] | None, descriptor: Descriptor) -> None:
        shown_once = [name for name in secret_fields(descriptor) if (answer or {}).get(name)]
        if shown_once:
            click.echo(f"note: {', '.join(shown_once)} is shown once and cannot be read again: keep it now",
                       err=True)
        if answer is None:
            return
        if self.data(answer):
            return
        table = Table("FIELD", "VALUE", box=None, header_style="bold", show_header=False)
        for key, value in answer.items():
            if key in shown_once:
                table.add_row(Text(f"{key} (shown once)", style="bold yellow"), Text(str(value), style="bold yellow"))
            elif isinstance(value, dict):
                table.add_row(key, Text(yaml.safe_dump(value, sort_keys=False).rstrip()))
            else:
                table.add_row(key, Text(_cell(value)))
        self.console.print(table)


def error(message: str) -> None:
    click.echo(f"error: {message}", err=True)
