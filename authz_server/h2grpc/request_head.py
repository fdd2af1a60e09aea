"""A request's header list checked against RFC 9113 §8.2-8.3, and the fields a unary call needs.

A header list that breaks these rules is malformed: its stream ends with RST_STREAM
(PROTOCOL_ERROR), the connection goes on (§8.1.1). Checked once per distinct header
block: the connection keeps the result with the decoded block (see connection._decode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from authz_server.h2grpc.grpc_wire import parse_timeout

# §8.2.1: no NUL-SP, no uppercase, no DEL or non-ASCII in a name; ":" only to start a pseudo-header.
_NAME = re.compile(rb"[!-9;-@\[-~]+")
# §8.2.1: no NUL, CR or LF in a value; no leading or trailing SP or HTAB.
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
# §8.2.2: fields that only mean something on one HTTP/1.1 connection.
_CONNECTION_SPECIFIC = frozenset({b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding",
                                  b"upgrade"})
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})


class MalformedRequest(Exception):
    """The header list breaks RFC 9113 §8.2-8.3 (the reason says which rule)."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: bytes
    path: bytes
    content_type: bytes | None
    timeout: float | None   # grpc-timeout in seconds


def request_head(headers: list[tuple[bytes, bytes]]) -> RequestHead:
    """The head of a request, or MalformedRequest."""
    pseudo: dict[bytes, bytes] = {}
    content_type: bytes | None = None
    timeout: float | None = None
    regular_seen = False
    for name, value in headers:
        if name[:1] == b":":
            if regular_seen:
                raise MalformedRequest(f"pseudo-header {_shown(name)} after a regular field")
            if name not in _REQUEST_PSEUDO:
                raise MalformedRequest(f"unknown pseudo-header {_shown(name)}")
            if name in pseudo:
                raise MalformedRequest(f"pseudo-header {_shown(name)} twice")
            pseudo[name] = value
        else:
            regular_seen = True
            _check_field(name)
            if name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = parse_timeout(value)
            elif name == b"te" and value != b"trailers":
                raise MalformedRequest("te other than trailers")
        if _BAD_VALUE.search(value):
            raise MalformedRequest(f"the value of {_shown(name)} has a forbidden character or surrounding space")
    for required in (b":method", b":scheme", b":path"):
        if not pseudo.get(required):
            raise MalformedRequest(f"no {required.decode()}")
    return RequestHead(pseudo[b":method"], pseudo[b":path"], content_type, timeout)


def check_trailers(headers: list[tuple[bytes, bytes]]) -> None:
    """Trailers: regular fields only (§8.1), each well formed."""
    for name, value in headers:
        if name[:1] == b":":
            raise MalformedRequest(f"pseudo-header {_shown(name)} in trailers")
        _check_field(name)
        if _BAD_VALUE.search(value):
            raise MalformedRequest(f"the value of {_shown(name)} has a forbidden character or surrounding space")


def _check_field(name: bytes) -> None:
    if not _NAME.fullmatch(name):
        raise MalformedRequest(f"field name {_shown(name)} is not lowercase visible ASCII")
    if name in _CONNECTION_SPECIFIC:
        raise MalformedRequest(f"connection-specific field {_shown(name)}")


def _shown(name: bytes) -> str:
    return repr(name[:60].decode("ascii", "backslashreplace"))
