"""One click group per noun and one command per verb, generated from the Operations.

Path fields are arguments in path order (`consumer-secrets delete KEY_ID ID`); body or
query fields are options typed by their proto field; `-f FILE` gives the whole body as
YAML or JSON and options override it. `list` follows every page. Verbs that are one
value of another verb's field (`apis publish` = `apis lifecycle --target-state
PUBLISHED`) are SHORTCUTS.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml
from google.protobuf.descriptor import FieldDescriptor

from portcullis_cli.fields import (
    OUTPUT_ONLY,
    InputError,
    enum_names,
    is_repeated,
    is_scalar,
    option_name,
    scalar_value,
    set_path,
    structured_value,
)
from portcullis_cli.output import FORMATS, Printer
from portcullis_cli.schema import Operation, nouns
from portcullis_cli.session import session_of

# noun -> shortcut verb -> (verb it stands for, the fields it sets).
SHORTCUTS: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    "apis": {
        "publish": ("lifecycle", {"target_state": "PUBLISHED"}),
        "deprecate": ("lifecycle", {"target_state": "DEPRECATED"}),
        "retire": ("lifecycle", {"target_state": "RETIRED"}),
        "block": ("lifecycle", {"target_state": "BLOCKED"}),
    },
}
_PAGING = {"page_size", "page_token"}
_RESERVED = {"output", "file", "set"}

OUTPUT_OPTION = click.Option(["-o", "--output"], default="table", show_default=True, metavar="FORMAT",
                             help=f"{'|'.join(FORMATS)}, or value:PATH for one value (value:id, value:key.consumer_key)")


def request_fields(operation: Operation) -> list[FieldDescriptor]:
    """The fields a user may set: the body's (less answer-only ones) or the query's."""
    if operation.body:
        resource_body = operation.body != "*"
        return [f for f in operation.body_fields
                if f.name not in OUTPUT_ONLY and not f.name.endswith("_set")
                and not (resource_body and f.name == "id")]
    return [f for f in operation.query_fields if f.name not in _PAGING or not operation.list_field]


def _option(field: FieldDescriptor) -> click.Option:
    name = option_name(field)
    if name in _RESERVED:
        raise ValueError(f"field {field.full_name} collides with the CLI's own --{name}")
    declared = [f"--{name}", f"field_{field.name}"]
    if field.type == FieldDescriptor.TYPE_BOOL and not is_repeated(field):
        return click.Option([f"--{name}/--no-{name}", f"field_{field.name}"], default=None,
                            help=f"{field.name} (bool)")
    if field.type == FieldDescriptor.TYPE_ENUM:
        return click.Option(declared, multiple=is_repeated(field),
                            type=click.Choice(enum_names(field), case_sensitive=False),
                            help=f"{field.name} ({field.enum_type.name})")
    if is_scalar(field):
        timestamp = field.message_type is not None and field.message_type.name == "Timestamp"
        return click.Option(declared, multiple=is_repeated(field), metavar="VALUE",
                            help=f"{field.name}{' (repeat for each)' if is_repeated(field) else ''}"
                                 f"{' (RFC 3339)' if timestamp else ''}")
    return click.Option(declared, metavar="YAML",
                        help=f"{field.name}: {field.message_type.name}{' list' if is_repeated(field) else ''}"
                             " as YAML or JSON")


def _read_body_file(path: str) -> dict[str, Any]:
    # sys.stdin, not click.get_text_stream (deprecated in click 8.2, to go in 9.0).
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML or JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected an object of request fields")
    return value


def build_body(operation: Operation, values: dict[str, Any], body_file: str | None,
               assignments: tuple[str, ...]) -> dict[str, Any]:
    body = _read_body_file(body_file) if body_file else {}
    for field in request_fields(operation):
        given = values.get(f"field_{field.name}")
        if given is None or given == ():
            continue
        if is_scalar(field):
            body[field.name] = ([scalar_value(field, v) for v in given] if is_repeated(field)
                                else scalar_value(field, given))
        else:
            body[field.name] = structured_value(field, given)
    descriptor = operation.body_descriptor
    for assignment in assignments:
        assert descriptor is not None
        set_path(body, descriptor, assignment)
    return body


def run_operation(operation: Operation, path_values: dict[str, str], values: dict[str, Any],
                  body_file: str | None = None, assignments: tuple[str, ...] = (), output: str = "table") -> None:
    printer = Printer(output)
    client = session_of(click.get_current_context()).client()
    if operation.body:
        answer = client.call(operation, path_values, body=build_body(operation, values, body_file, assignments))
        printer.one(answer, operation.response)
        return
    params = {}
    for field in request_fields(operation):
        given = values.get(f"field_{field.name}")
        if given is not None and given != ():
            params[field.name] = ([scalar_value(field, v) for v in given] if is_repeated(field)
                                  else scalar_value(field, given))
    if operation.list_field is not None:
        items = list(client.list_all(operation, path_values, params))
        printer.items(items, operation.list_field.message_type)
        return
    answer = client.call(operation, path_values, params=params)
    printer.one(answer, operation.response)
    if answer is None and output == "table":
        click.echo(f"{operation.noun} {operation.verb}: done", err=True)


def operation_command(operation: Operation, name: str, fixed: dict[str, str] | None = None) -> click.Command:
    fixed = fixed or {}
    params: list[click.Parameter] = [click.Argument([f"path_{p}"], metavar=p.upper()) for p in operation.path_fields]
    params += [_option(f) for f in request_fields(operation) if f.name not in fixed]
    if operation.body:
        params.append(click.Option(["-f", "--file", "body_file"], metavar="FILE",
                                   help="the request body as YAML or JSON (- for stdin); options override it"))
        params.append(click.Option(["--set", "assignments"], multiple=True, metavar="PATH=VALUE",
                                   help="one nested value, e.g. security.api_key.header=x-key"))
    params.append(OUTPUT_OPTION)

    def callback(output: str, body_file: str | None = None, assignments: tuple[str, ...] = (),
                 **values: Any) -> None:
        path_values = {p: values.pop(f"path_{p}") for p in operation.path_fields}
        values.update({f"field_{k}": v for k, v in fixed.items()})
        run_operation(operation, path_values, values, body_file, assignments, output)

    what = f"{operation.http_method} {operation.path}"
    summary = f"{name.capitalize()} ({operation.full_name.split('/')[1]}"
    summary += f", {', '.join(f'{k}={v}' for k, v in fixed.items())})" if fixed else ")"
    return click.Command(name, params=params, callback=callback, help=f"{summary}\n\nREST: {what}",
                         short_help=summary)


def noun_groups() -> list[click.Group]:
    groups = []
    for noun, verbs in nouns().items():
        group = click.Group(noun, help=f"{noun}: {', '.join(verbs)}")
        for verb, operation in verbs.items():
            group.add_command(operation_command(operation, verb))
        for shortcut, (verb, fixed) in SHORTCUTS.get(noun, {}).items():
            if verb in verbs:
                group.add_command(operation_command(verbs[verb], shortcut, fixed))
        groups.append(group)
    return groups
