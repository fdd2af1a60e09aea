"""Check a decoded JSON value against a message descriptor before json_format sees it.

json_format alone accepts more than the OpenAPI document promises (camelCase names,
enum numbers, integers in quotes, null) and names the culprit only inside its message.
This walk accepts exactly the documented shapes and names the offending field as a path
(`resources[2].method`), so a 400 tells the client what to fix.
"""

from __future__ import annotations

import math
import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from admin_api.transports.rest.fields import INTEGER_RANGES, Kind, kind_of
from admin_api.transports.rest.problems import invalid

INT64_TEXT = re.compile(r"-?[0-9]+")


def check_object(value: Any, descriptor: Descriptor, path: str = "") -> None:
    """Raise a 400 Problem unless value is a JSON object fit for the message."""
    if not isinstance(value, dict):
        raise invalid(f"{path or 'the body'} must be a JSON object", path or None)
    for key, item in value.items():
        field = descriptor.fields_by_name.get(key)
        where = f"{path}.{key}" if path else key
        if field is None:
            raise invalid(_unknown_field(key, descriptor, path), where)
        check_field(item, field, where)


def check_field(value: Any, field: FieldDescriptor, where: str) -> None:
    if value is None:
        raise invalid(f"{where}: null is not allowed; leave the field out instead", where)
    if field.is_repeated:
        if not isinstance(value, list):
            raise invalid(f"{where} must be a JSON array", where)
        for index, item in enumerate(value):
            element = f"{where}[{index}]"
            if item is None:
                raise invalid(f"{element}: null is not allowed in an array", element)
            _check_value(item, field, element)
    else:
        _check_value(value, field, where)


def _check_value(value: Any, field: FieldDescriptor, where: str) -> None:
    kind = kind_of(field)
    if kind is Kind.MESSAGE or kind is Kind.EMPTY:
        check_object(value, field.message_type, where)
    elif kind in (Kind.STRING, Kind.BYTES, Kind.TIMESTAMP, Kind.DURATION, Kind.FIELD_MASK):
        if not isinstance(value, str):
            raise invalid(f"{where} must be a string", where)
    elif kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise invalid(f"{where} must be true or false", where)
    elif kind is Kind.ENUM:
        names = [v.name for v in field.enum_type.values]
        if not isinstance(value, str) or value not in names:
            raise invalid(f"{where} must be one of {', '.join(names)}", where)
    elif kind in INTEGER_RANGES:
        _check_integer(value, kind, where)
    elif kind in (Kind.FLOAT, Kind.DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise invalid(f"{where} must be a number", where)
    else:  # pragma: no cover - fields.kind_of admits nothing else
        raise invalid(f"{where} cannot be set over REST", where)


def _check_integer(value: Any, kind: Kind, where: str) -> None:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and kind in (Kind.INT64, Kind.UINT64) and INT64_TEXT.fullmatch(value):
        number = int(value)  # proto JSON writes 64-bit integers as strings
    if number is None:
        raise invalid(f"{where} must be an integer", where)
    low, high = INTEGER_RANGES[kind]
    if not low <= number <= high:
        raise invalid(f"{where} must be between {low} and {high}", where)


def _unknown_field(key: str, descriptor: Descriptor, path: str) -> str:
    owner = f"{path} ({descriptor.name})" if path else descriptor.name
    for field in descriptor.fields:
        if key in (field.json_name, field.camelcase_name) and key != field.name:
            return f"unknown field {key!r} in {owner}; did you mean {field.name!r}?"
    return f"unknown field {key!r} in {owner}"
