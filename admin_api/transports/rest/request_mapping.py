"""Path variables, query parameters and JSON body → the request message of one RPC.

Rules (google.api.http style, narrowed to what the admin protos use):
- `{field}` path variables set top-level scalar fields; they win over the body, and a
  body that names the same field with another value is a 400.
- body "*": the JSON object is the request; body "<field>": it is that sub-message.
- The query string may set the remaining scalar, enum and repeated-scalar fields
  (`?allowed_ips=a&allowed_ips=b`); any other query parameter is a 400.
- A FieldMask is written `a,b.c` (proto names; camelCase accepted). On PATCH, when the
  client gives no `update_mask`, the top-level keys of the JSON body are the mask (less
  the path variables); a PATCH that names nothing to update is a 400, never a silent
  full replacement.
"""

from __future__ import annotations

import math
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from admin_api.transports.rest.bindings import HttpBinding
from admin_api.transports.rest.fields import INTEGER_RANGES, Kind, kind_of
from admin_api.transports.rest.problems import invalid
from admin_api.transports.rest.strict_json import INT64_TEXT, check_object

_PARSE_ERROR_AT = re.compile(r" at \"?[A-Za-z0-9_]+\.([A-Za-z0-9_.\[\]]+?)\"?\.*$")


def build_request(
    binding: HttpBinding,
    path_values: dict[str, str],
    query: list[tuple[str, str]],
    body: Any,
) -> Message:
    """body: the decoded JSON (a dict for bindings with a body, None otherwise)."""
    request = binding.request_class()
    masks: dict[str, str] = {}
    body_keys: set[str] = set()

    if binding.body == "*":
        check_object(body, binding.request_descriptor)
        body_keys = set(body)
        rest = dict(body)
        for field in binding.request_descriptor.fields:
            if field.name in rest and kind_of(field) is Kind.FIELD_MASK and not field.is_repeated:
                masks[field.name] = rest.pop(field.name)
        _parse(rest, request)
    elif binding.body_field is not None:
        check_object(body, binding.body_field.message_type)
        body_keys = set(body)
        target = getattr(request, binding.body_field.name)
        target.SetInParent()  # an empty body still means "this sub-message, empty"
        _parse(body, target)

    query_values = _query_values(binding, query, masks)
    query_message = binding.request_class()
    _parse(query_values, query_message)
    request.MergeFrom(query_message)

    _apply_path(binding, path_values, request, body_keys)

    for name, text in masks.items():
        target = binding.mask_target if name == "update_mask" else None
        getattr(request, name).paths[:] = parse_mask(text, target, name)
        getattr(request, name).SetInParent()

    if binding.mask_field is not None:
        _infer_mask(binding, request, body_keys)
    return request


def parse_mask(text: str, target: Descriptor | None, where: str) -> list[str]:
    """`a,b.c` → ["a", "b.c"], each path checked against target when there is one."""
    if not text.strip():
        return []
    paths = []
    for raw in text.split(","):
        path = raw.strip()
        if not path:
            raise invalid(f"{where}: empty path in {text!r}", where)
        paths.append(_mask_path(path, target, where) if target is not None else path)
    return paths


def _mask_path(path: str, target: Descriptor, where: str) -> str:
    names = []
    descriptor: Descriptor | None = target
    for segment in path.split("."):
        field = None
        if descriptor is not None:
            field = descriptor.fields_by_name.get(segment) or next(
                (f for f in descriptor.fields if f.json_name == segment), None
            )
        if field is None:
            raise invalid(f"{where}: {path!r} names no field of {target.name}", where)
        names.append(field.name)
        plain_message = kind_of(field) is Kind.MESSAGE and not field.is_repeated
        descriptor = field.message_type if plain_message else None
    return ".".join(names)


def _query_values(
    binding: HttpBinding, query: list[tuple[str, str]], masks: dict[str, str]
) -> dict[str, Any]:
    allowed = {f.name: f for f in binding.query_fields}
    path_names = {f.name for f in binding.path_fields}
    grouped: dict[str, list[str]] = {}
    for name, text in query:
        grouped.setdefault(name, []).append(text)

    values: dict[str, Any] = {}
    for name, texts in grouped.items():
        field = allowed.get(name)
        if field is None:
            raise invalid(_unknown_parameter(name, binding, allowed, path_names), name)
        if not field.is_repeated and len(texts) > 1:
            raise invalid(f"query parameter {name!r} is given more than once", name)
        if kind_of(field) is Kind.FIELD_MASK:
            masks[name] = texts[0]
        elif field.is_repeated:
            values[name] = [text_value(field, text, name) for text in texts]
        else:
            values[name] = text_value(field, texts[0], name)
    return values


def _unknown_parameter(
    name: str, binding: HttpBinding, allowed: dict[str, FieldDescriptor], path_names: set[str]
) -> str:
    if name in path_names:
        return f"{name!r} is given by the path, not the query string"
    for field in allowed.values():
        if name == field.json_name and name != field.name:
            return f"unknown query parameter {name!r}; did you mean {field.name!r}?"
    if not allowed:
        return f"unknown query parameter {name!r}: this operation takes none"
    return f"unknown query parameter {name!r}; allowed: {', '.join(sorted(allowed))}"


def text_value(field: FieldDescriptor, text: str, where: str) -> Any:
    """One path segment or query value → the JSON value json_format expects."""
    kind = kind_of(field)
    if kind is Kind.BOOL:
        if text not in ("true", "false"):
            raise invalid(f"{where} must be true or false", where)
        return text == "true"
    if kind in INTEGER_RANGES:
        if not INT64_TEXT.fullmatch(text):
            raise invalid(f"{where} must be an integer", where)
        number = int(text)
        low, high = INTEGER_RANGES[kind]
        if not low <= number <= high:
            raise invalid(f"{where} must be between {low} and {high}", where)
        return number
    if kind in (Kind.FLOAT, Kind.DOUBLE):
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise invalid(f"{where} must be a number", where)
        return number
    if kind is Kind.ENUM:
        names = [v.name for v in field.enum_type.values]
        if text not in names:
            raise invalid(f"{where} must be one of {', '.join(names)}", where)
    return text


def _apply_path(
    binding: HttpBinding, path_values: dict[str, str], request: Message, body_keys: set[str]
) -> None:
    if not binding.path_fields:
        return
    values = {f.name: text_value(f, path_values[f.name], f.name) for f in binding.path_fields}
    from_path = binding.request_class()
    _parse(values, from_path)

    # The body may repeat a path variable (the request's own field for body "*", the
    # sub-message's field of the same name for body "<field>") but only with its value.
    in_body = request
    if binding.body_field is not None:
        in_body = getattr(request, binding.body_field.name)
    for field in binding.path_fields:
        if field.name not in body_keys:
            continue
        body_field = in_body.DESCRIPTOR.fields_by_name[field.name]
        if body_field.type != field.type or getattr(in_body, field.name) != getattr(from_path, field.name):
            raise invalid(
                f"{field.name} in the body ({getattr(in_body, field.name)!r}) disagrees with "
                f"the path ({getattr(from_path, field.name)!r})",
                field.name,
            )
    for field in binding.path_fields:
        setattr(request, field.name, getattr(from_path, field.name))


def _infer_mask(binding: HttpBinding, request: Message, body_keys: set[str]) -> None:
    mask_field = binding.mask_field
    assert mask_field is not None
    mask = getattr(request, mask_field.name)
    if mask.paths:
        return
    skip = {f.name for f in binding.path_fields} | {mask_field.name}
    # In the order the proto declares the fields, so a body always gives the same mask.
    paths = [key for key in _in_field_order(body_keys, binding) if key not in skip]
    if not paths:
        raise invalid(
            f"nothing to update: give {mask_field.name} or at least one field in the body",
            mask_field.name,
        )
    mask.paths[:] = paths


def _in_field_order(body_keys: set[str], binding: HttpBinding) -> list[str]:
    target = binding.body_descriptor
    if target is None:
        return []
    return [f.name for f in target.fields if f.name in body_keys]


def _parse(values: dict[str, Any], message: Message) -> None:
    try:
        json_format.ParseDict(values, message)
    except json_format.ParseError as error:
        text = str(error).split("\n", 1)[0]
        found = _PARSE_ERROR_AT.search(text)
        raise invalid(f"invalid value: {text}", found.group(1) if found else None) from None
    except (ValueError, TypeError, RecursionError) as error:
        raise invalid(f"invalid value: {error}") from None
