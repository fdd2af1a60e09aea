"""Envoy ext_authz ↔ the pipeline: CheckRequest → RequestContext, decision → CheckResponse.

The only module besides the servicer that knows Envoy's protobufs.
"""

from __future__ import annotations

import json
from types import MappingProxyType

from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from authz_server.context import Allow, RequestContext
from authz_server.context import Identity
from authz_server.denials import Denial
from authz_server.index.api_keys import KeyEnvironment
from authz_server.index.apis import ApiPolicy
from authz_server.pipeline.client_ip import resolve_client_ip
from authz_server.pipeline.paths import parse_path, parse_query, split_target
from authz_server.throttle.fields import POLICY_FIELD

ENVIRONMENT_HEADER = "x-portcullis-environment"
AUTHORIZATION_HEADER = "authorization"
REASON_HEADER = "x-portcullis-reason"
RESERVED_PREFIX = "x-portcullis-"
# Envoy refuses to remove these; never ask.
_UNREMOVABLE = frozenset({"host", ":authority", ":path", ":method", ":scheme", ":status"})

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_APPEND = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD


# --- request ---------------------------------------------------------------------------------


def _headers(http) -> MappingProxyType:
    """Lower-cased name → values, from `header_map` (one entry per value) or `headers`."""
    if http.HasField("header_map") and http.header_map.headers:
        collected: dict[str, list[str]] = {}
        for header in http.header_map.headers:
            value = header.raw_value.decode("utf-8", "surrogateescape") if header.raw_value else header.value
            collected.setdefault(header.key.lower(), []).append(value)
        return MappingProxyType({name: tuple(values) for name, values in collected.items()})
    # A map: one value per name, so tuples at once; two spellings of one name (`Accept`,
    # `accept`) add up. Iterating the names and indexing costs half of `.items()` (a
    # generator in collections.abc).
    headers = http.headers
    merged: dict[str, tuple[str, ...]] = {}
    for name in headers:
        lower = name.lower()
        if lower in merged:
            merged[lower] += (headers[name],)
        else:
            merged[lower] = (headers[name],)
    return MappingProxyType(merged)


def to_request_context(check: external_auth_pb2.CheckRequest, *, trusted_hops: int = 0) -> RequestContext:
    """Raises BadRequest when the path or query cannot be parsed."""
    http = check.attributes.request.http
    headers = _headers(http)
    raw_path, raw_query = split_target(http.path or headers.get(":path", ("",))[0], http.query)
    peer = check.attributes.source.address.socket_address.address
    return RequestContext(
        method=(http.method or headers.get(":method", ("",))[0]).upper(),
        raw_path=raw_path,
        segments=parse_path(raw_path),
        query=parse_query(raw_query),
        headers=headers,
        peer_address=peer,
        client_ip=resolve_client_ip(peer, headers.get("x-forwarded-for", ()), trusted_hops),
        request_id=http.id or headers.get("x-request-id", ("",))[0],
    )


# --- response --------------------------------------------------------------------------------


def _header(name: str, value: str, action=_OVERWRITE) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=name, value=value), append_action=action)


def _metadata(**fields: str) -> struct_pb2.Struct:
    # Assigning each value in place is ~2x faster than Struct.update() (pure Python).
    metadata = struct_pb2.Struct()
    values = metadata.fields
    for name, value in fields.items():
        values[name].string_value = value
    return metadata


# Method overrides: the decision is made on the request's real method, so a backend (or
# framework) that honours one of these would run another method than the one allowed.
METHOD_OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")


def _headers_to_remove(request: RequestContext | None, api: ApiPolicy, set_names: set[str]) -> list[str]:
    names: list[str] = []
    if api.api_key is not None:
        names.append(api.api_key.header)
    sent = (lambda name: True) if request is None else (lambda name: name in request.headers)
    # A backend JWT comes from Portcullis or not at all, whether the API signs one or not.
    if sent(api.backend_jwt_header):
        names.append(api.backend_jwt_header)
    if not api.pass_authorization_header and sent(AUTHORIZATION_HEADER):
        names.append(AUTHORIZATION_HEADER)
    names.extend(name for name in METHOD_OVERRIDE_HEADERS if sent(name))
    if request is not None:
        # Nobody but authz_server speaks x-portcullis-* to the backend.
        names.extend(name for name in request.headers if name.startswith(RESERVED_PREFIX))
    return [name for name in dict.fromkeys(names) if name not in set_names and name not in _UNREMOVABLE]


def _query_parameters_to_remove(request: RequestContext | None, api: ApiPolicy) -> list[str]:
    scheme = api.api_key
    if scheme is None or scheme.query_param is None:
        return []
    names = [scheme.query_param]
    if request is not None:
        # Envoy compares names as sent: remove every spelling that decodes to the key's.
        names.extend(request.raw_query_names(scheme.query_param))
    return list(dict.fromkeys(names))


def allow_response(allow: Allow, request: RequestContext | None) -> external_auth_pb2.CheckResponse:
    environment = allow.environment.value
    headers = [_header(ENVIRONMENT_HEADER, environment)]
    if allow.backend_jwt:
        headers.append(_header(allow.route.api.backend_jwt_header, allow.backend_jwt))
    set_names = {option.header.key for option in headers}
    ok = external_auth_pb2.OkHttpResponse(
        headers=headers,
        headers_to_remove=_headers_to_remove(request, allow.route.api, set_names),
        query_parameters_to_remove=_query_parameters_to_remove(request, allow.route.api),
    )
    response = external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=ok,
        dynamic_metadata=_metadata(
            api_id=allow.api_id,
            api_key_id=allow.api_key_id,
            application_id=allow.application_id,
            environment=environment,
            reason=allow.code,
            # The resource the decision was made for: the access log shows it next to the
            # path Envoy forwarded, so a mismatch between the two would be visible.
            resource=f"{allow.route.resource.method} {allow.route.resource.template}",
            credential_kind=allow.credential_kind,
            key_manager_id=allow.key_manager_id,
            consumer_key=allow.consumer_key,
        ),
    )
    if allow.rate_limit_headers:
        # On the backend's response to the client (the RateLimit fields). Filled in place,
        # in the response itself: half the cost of building each option and copying it in
        # (~2.5 µs a field), and not copied again with `ok` into the response (~1.2k
        # instructions a decision).
        add = response.ok_response.response_headers_to_add.add
        for name, value in allow.rate_limit_headers:
            header = add(append_action=_OVERWRITE).header
            header.key = name
            header.value = value
    if allow.over_quota:
        # The limits this call is over but was admitted under (stop_on_quota_reach off).
        response.dynamic_metadata.fields["over_quota"].string_value = ",".join(allow.over_quota)
    return response


class EncodedAllows:
    """Serialized allow responses, reused: most calls of one client get the same answer
    byte for byte, and building it as protobuf objects was a quarter of a cached call.

    An entry is keyed by everything `allow_response` reads (the API, resource,
    environment, reason, backend JWT, who is calling, the request's header names and
    query parameter names), so a hit is exactly the bytes it would have built; the
    decision itself is made on every call before this is asked, so nothing here can
    allow what the decision denies. Entries belong to one index (an API is named by its
    id within it): a new index starts an empty table. The fields that differ call by
    call (RateLimit fields, over quota) are not in an entry: they are encoded per call
    and appended (`_per_call_fields`). Bounded: past `max_entries` the table starts
    again. Shared by the loop and the offload threads: each reads one (index, table)
    pair, and a table only ever holds answers decided on its index."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._generation: tuple[object, dict[tuple, bytes]] = (None, {})

    def encoded(self, allow: Allow, request: RequestContext | None, index: object) -> bytes:
        if request is None:
            return allow_response(allow, request).SerializeToString()
        seen, entries = self._generation
        if seen is not index:
            entries = {}
            self._generation = (index, entries)
        key = _allow_key(allow, request)
        encoded = entries.get(key)
        if encoded is None:
            encoded = _without_per_call_fields(allow, request).SerializeToString()
            if len(entries) >= self._max_entries:
                entries.clear()
            entries[key] = encoded
        if allow.rate_limit_headers or allow.over_quota:
            return encoded + _per_call_fields(allow)
        return encoded


def _without_per_call_fields(allow: Allow, request: RequestContext) -> external_auth_pb2.CheckResponse:
    if allow.rate_limit_headers or allow.over_quota:
        allow = allow._replace(rate_limit_headers=(), over_quota=())
    return allow_response(allow, request)


# --- per-call fields, encoded by hand ----------------------------------------------------
# Protobuf's wire format merges a message sent in pieces: a second `ok_response` or
# `dynamic_metadata` is merged into the first, its repeated fields appended and its map
# entries added. So the cached bytes of an allow without its RateLimit fields and over-quota
# mark, followed by a CheckResponse holding only those, parse as `allow_response` would
# have built it (tests/authz_server/test_encoded_allows.py checks that, message for
# message). Building those few fields as protobuf objects and serializing them was most of
# what a counted call cost more than an uncounted one (about 20 µs of 25).

def _number(message, field: str) -> int:
    return message.DESCRIPTOR.fields_by_name[field].number


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


_LENGTH_DELIMITED, _VARINT = 2, 0


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


_OK_RESPONSE = _tag(_number(external_auth_pb2.CheckResponse, "ok_response"), _LENGTH_DELIMITED)
_DYNAMIC_METADATA = _tag(_number(external_auth_pb2.CheckResponse, "dynamic_metadata"), _LENGTH_DELIMITED)
_RESPONSE_HEADERS_TO_ADD = _tag(_number(external_auth_pb2.OkHttpResponse, "response_headers_to_add"),
                                _LENGTH_DELIMITED)
_OPTION_HEADER = _tag(_number(base_pb2.HeaderValueOption, "header"), _LENGTH_DELIMITED)
# The action is the same for every RateLimit field: its tag and value, once.
_OPTION_OVERWRITE = _tag(_number(base_pb2.HeaderValueOption, "append_action"), _VARINT) + _varint(_OVERWRITE)
_HEADER_KEY = _tag(_number(base_pb2.HeaderValue, "key"), _LENGTH_DELIMITED)
_HEADER_VALUE = _tag(_number(base_pb2.HeaderValue, "value"), _LENGTH_DELIMITED)
_STRUCT_FIELDS = _tag(_number(struct_pb2.Struct, "fields"), _LENGTH_DELIMITED)
_ENTRY_KEY = _tag(1, _LENGTH_DELIMITED)     # a map entry is a message: key = 1, value = 2
_ENTRY_VALUE = _tag(2, _LENGTH_DELIMITED)
_STRING_VALUE = _tag(_number(struct_pb2.Value, "string_value"), _LENGTH_DELIMITED)
_OVER_QUOTA_KEY = _delimited(_ENTRY_KEY, b"over_quota")


_HEADER_TAGS = len(_HEADER_KEY) + len(_HEADER_VALUE)
_OPTION_FIXED = len(_OPTION_HEADER) + len(_OPTION_OVERWRITE)
# One byte per length below 128 (every RateLimit field in practice): an index, not a loop.
_ONE_BYTE_LENGTHS = tuple(bytes((length,)) for length in range(0x80))


def _length(length: int) -> bytes:
    return _ONE_BYTE_LENGTHS[length] if length < 0x80 else _varint(length)


def _response_header(name: str, value: str) -> bytes:
    """One HeaderValueOption in `response_headers_to_add`, its nested lengths worked out first
    and the bytes joined once; each length one byte by index when it is below 128 (a field
    of a few dozen bytes), else the general varint."""
    key, text = name.encode(), value.encode()
    lengths = _ONE_BYTE_LENGTHS
    header = _HEADER_TAGS + 2 + len(key) + len(text)
    try:
        key_length, text_length = lengths[len(key)], lengths[len(text)]
        header_length, option_length = lengths[header], lengths[_OPTION_FIXED + 1 + header]
    except IndexError:   # a length past one byte
        key_length, text_length = _length(len(key)), _length(len(text))
        header = _HEADER_TAGS + len(key_length) + len(key) + len(text_length) + len(text)
        header_length = _length(header)
        option_length = _length(_OPTION_FIXED + len(header_length) + header)
    return b"".join((_RESPONSE_HEADERS_TO_ADD, option_length, _OPTION_HEADER, header_length,
                     _HEADER_KEY, key_length, key, _HEADER_VALUE, text_length, text, _OPTION_OVERWRITE))


# The RateLimit-Policy field of a tier is the same on every call: its bytes, once per value.
_CONSTANT_FIELDS: dict[tuple[str, str], bytes] = {}
_CONSTANT_FIELDS_LIMIT = 4096


def _constant_response_header(name: str, value: str) -> bytes:
    encoded = _CONSTANT_FIELDS.get((name, value))
    if encoded is None:
        if len(_CONSTANT_FIELDS) >= _CONSTANT_FIELDS_LIMIT:
            _CONSTANT_FIELDS.clear()
        encoded = _CONSTANT_FIELDS[(name, value)] = _response_header(name, value)
    return encoded


def _per_call_fields(allow: Allow) -> bytes:
    """The RateLimit fields and over-quota mark of `allow`, as a CheckResponse to append."""
    out = b""
    fields = allow.rate_limit_headers
    if fields:
        if len(fields) == 2 and fields[0][0] == POLICY_FIELD:   # the usual: RateLimit-Policy, RateLimit
            headers = _constant_response_header(*fields[0]) + _response_header(*fields[1])
        else:
            headers = b"".join([_constant_response_header(name, value) if name == POLICY_FIELD
                                else _response_header(name, value) for name, value in fields])
        out = _OK_RESPONSE + _length(len(headers)) + headers
    if allow.over_quota:
        value = _delimited(_STRING_VALUE, ",".join(allow.over_quota).encode())
        entry = _delimited(_STRUCT_FIELDS, _OVER_QUOTA_KEY + _delimited(_ENTRY_VALUE, value))
        out += _delimited(_DYNAMIC_METADATA, entry)
    return out


def _allow_key(allow: Allow, request: RequestContext) -> tuple:
    route, identity = allow.route, allow.identity
    who = None if identity is None else (identity.kind, identity.api_key_id, identity.application_id,
                                         identity.key_manager_id, identity.consumer_key)
    query = tuple(param.raw_name for param in request.query) if request.query else ()
    return (route.api.id, route.resource.method, route.resource.template, allow.environment, allow.code,
            allow.backend_jwt, who, tuple(request.headers), query)


def deny_response(denial: Denial) -> external_auth_pb2.CheckResponse:
    headers = [
        _header("content-type", "application/json"),
        _header(REASON_HEADER, denial.code),
    ]
    headers.extend(_header("www-authenticate", challenge, _APPEND) for challenge in denial.challenges)
    headers.extend(_header(name, value) for name, value in denial.headers)
    body = json.dumps({"code": denial.code, "message": denial.message}, separators=(",", ":"))
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message=denial.code),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=denial.http_status),
            headers=headers,
            body=body,
        ),
        dynamic_metadata=_metadata(
            api_id=denial.api_id,
            api_key_id=denial.api_key_id,
            reason=denial.code,
        ),
    )


def dry_run_response(denial: Denial, api: ApiPolicy, identity: Identity | None,
                     request: RequestContext | None) -> external_auth_pb2.CheckResponse:
    """An API in DRY_RUN: the call `denial` would refuse is allowed, with the usual upstream
    hygiene (credentials and x-portcullis-* removed, a client-sent backend JWT header
    removed; no backend JWT is signed for a call its policy refuses), and the would-be
    reason in the metadata for Envoy's access log."""
    environment = (identity.environment if identity is not None and identity.environment is not None
                   else KeyEnvironment.PRODUCTION).value
    headers = [_header(ENVIRONMENT_HEADER, environment)]
    ok = external_auth_pb2.OkHttpResponse(
        headers=headers,
        headers_to_remove=_headers_to_remove(request, api, {ENVIRONMENT_HEADER}),
        query_parameters_to_remove=_query_parameters_to_remove(request, api),
    )
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=ok,
        dynamic_metadata=_metadata(
            api_id=api.id,
            api_key_id=denial.api_key_id,
            application_id=(identity.application_id or "") if identity is not None else "",
            environment=environment,
            reason=denial.code,
            outcome="would_deny",
        ),
    )


def to_check_response(decision: Allow | Denial, request: RequestContext | None) -> external_auth_pb2.CheckResponse:
    if isinstance(decision, Allow):
        return allow_response(decision, request)
    return deny_response(decision)
