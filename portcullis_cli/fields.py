"""From command-line text to the proto JSON the admin REST API takes, field by field.

Scalars and enums become typed options (`--production-endpoint URL`, `--environment
SANDBOX`, `--subscription-less/--no-subscription-less`), repeated scalars repeat
(`--roles a --roles b`), and anything nested is given as YAML or JSON text, with
`--set a.b=value` for one nested value, or the whole body with `-f FILE`.
"""

from __future__ import annotations

from typing import Any

import yaml
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from portcullis_cli.client import CliError

_T = FieldDescriptor
_INTEGERS = {_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32, _T.TYPE_UINT32, _T.TYPE_FIXED32}
_LONGS = {_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64, _T.TYPE_UINT64, _T.TYPE_FIXED64}
_FLOATS = {_T.TYPE_FLOAT, _T.TYPE_DOUBLE}
# Well-known types that JSON writes as one string.
_TEXT_MESSAGES = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
# Answer-only fields: never offered as options of a request.
OUTPUT_ONLY = frozenset({"created_at", "updated_at", "masked_value", "base_path"})


class InputError(CliError):
    """A value given on the command line or in a file does not fit its field."""


def is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def is_map(field: FieldDescriptor) -> bool:
    return (field.type == _T.TYPE_MESSAGE and field.message_type.GetOptions().map_entry)


def is_text_message(field: FieldDescriptor) -> bool:
    return field.type == _T.TYPE_MESSAGE and field.message_type.full_name in _TEXT_MESSAGES


def is_scalar(field: FieldDescriptor) -> bool:
    """Given as one word on the command line (a string, number, bool, enum or timestamp)."""
    return field.type != _T.TYPE_MESSAGE or is_text_message(field)


def enum_names(field: FieldDescriptor) -> list[str]:
    # Value 0 is a real choice unless it is the usual `X_UNSPECIFIED` placeholder
    # (Api.Enforcement's 0 is ENFORCE).
    return [value.name for value in field.enum_type.values
            if not (value.number == 0 and value.name.endswith("UNSPECIFIED"))]


def scalar_value(field: FieldDescriptor, text: Any) -> Any:
    """One scalar as JSON: numbers checked, enums by (case-insensitive) name."""
    where = f"--{option_name(field)}"
    if field.type == _T.TYPE_BOOL:
        if isinstance(text, bool):
            return text
        lowered = str(text).lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        raise InputError(f"{where}: expected true or false, not {text!r}")
    if field.type in _INTEGERS or field.type in _LONGS:
        try:
            number = int(str(text), 10)
        except ValueError:
            raise InputError(f"{where}: expected an integer, not {text!r}") from None
        return str(number) if field.type in _LONGS else number  # proto JSON: 64-bit as strings
    if field.type in _FLOATS:
        try:
            return float(text)
        except ValueError:
            raise InputError(f"{where}: expected a number, not {text!r}") from None
    if field.type == _T.TYPE_ENUM:
        names = enum_names(field)
        for name in names:
            if name.lower() == str(text).lower().replace("-", "_"):
                return name
        raise InputError(f"{where}: expected one of {', '.join(names)}, not {text!r}")
    return str(text)


def option_name(field: FieldDescriptor) -> str:
    return field.name.replace("_", "-")


def structured_value(field: FieldDescriptor, text: str) -> Any:
    """A nested message (or a list of them) written as YAML or JSON on the command line."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"--{option_name(field)}: not valid YAML or JSON: {exc}") from None
    if is_repeated(field) and not is_map(field) and isinstance(value, dict):
        value = [value]
    return value


def set_path(body: dict[str, Any], descriptor: Descriptor, assignment: str) -> None:
    """`--set security.api_key.header=x-key`: one nested value, typed by its field."""
    path, sep, text = assignment.partition("=")
    if not sep or not path:
        raise InputError(f"--set {assignment!r}: expected PATH=VALUE")
    names = path.split(".")
    target, current = body, descriptor
    for depth, name in enumerate(names):
        field = current.fields_by_name.get(name)
        if field is None:
            raise InputError(f"--set {path}: {current.name} has no field {name!r}")
        last = depth == len(names) - 1
        if last:
            if is_scalar(field) and not is_repeated(field):
                target[name] = scalar_value(field, text)
            elif is_scalar(field):
                target[name] = [scalar_value(field, item) for item in text.split(",") if item]
            else:
                target[name] = structured_value(field, text)
            return
        if field.type != _T.TYPE_MESSAGE or is_repeated(field) or is_text_message(field):
            raise InputError(f"--set {path}: {name} is not a message to go into")
        target = target.setdefault(name, {})
        current = field.message_type
