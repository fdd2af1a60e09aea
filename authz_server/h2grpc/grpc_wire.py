"""gRPC over HTTP/2 for unary calls: message framing, status trailers, timeouts.

See https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from hpack import Encoder, NeverIndexedHeaderTuple

MESSAGE_PREFIX = struct.Struct(">BI")   # compressed flag, length


class StatusCode(IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


class GrpcError(Exception):
    """A handler's way to answer a call with a non-OK status."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """An HPACK block that never touches the dynamic table, so one block serves every
    connection whatever its table state."""
    return Encoder().encode([NeverIndexedHeaderTuple(name, value) for name, value in headers], huffman=False)


RESPONSE_HEADERS = encode_headers([(":status", "200"), ("content-type", "application/grpc"),
                                   ("grpc-accept-encoding", "identity")])
OK_TRAILERS = encode_headers([("grpc-status", "0")])


def percent_encode(message: str) -> str:
    """grpc-message: UTF-8, with bytes outside printable ASCII and '%' percent-encoded."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in message.encode("utf-8"))


def trailers_only(code: StatusCode, message: str) -> bytes:
    """A whole answer in one HEADERS frame: HTTP 200 and the status, no message."""
    return encode_headers([(":status", "200"), ("content-type", "application/grpc"),
                           ("grpc-status", str(int(code))), ("grpc-message", percent_encode(message))])


def http_error(status: int, message: str) -> bytes:
    """Not a gRPC request at all (wrong method or content-type): a plain HTTP answer."""
    return encode_headers([(":status", str(status)), ("content-type", "text/plain"),
                           ("grpc-status", str(int(StatusCode.INTERNAL if status != 415 else StatusCode.UNKNOWN))),
                           ("grpc-message", percent_encode(message))])


def frame_message(payload: bytes) -> bytes:
    return MESSAGE_PREFIX.pack(0, len(payload)) + payload


def unframe_message(body: bytes | bytearray) -> bytes:
    """The one message of a unary request; GrpcError when the body is not exactly one."""
    if len(body) < MESSAGE_PREFIX.size:
        raise GrpcError(StatusCode.INTERNAL, "a unary call carries exactly one message; none arrived")
    compressed, length = MESSAGE_PREFIX.unpack_from(body)
    if compressed == 1:
        raise GrpcError(StatusCode.UNIMPLEMENTED, "compressed messages are not supported (grpc-accept-encoding: identity)")
    if compressed != 0:
        raise GrpcError(StatusCode.INTERNAL, f"invalid compressed flag {compressed}")
    if len(body) != MESSAGE_PREFIX.size + length:
        raise GrpcError(StatusCode.INTERNAL, "a unary call carries exactly one message")
    return bytes(body[MESSAGE_PREFIX.size:])


_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}


def parse_timeout(value: bytes) -> float | None:
    """grpc-timeout (1 to 8 digits and a unit) in seconds; None when absent or malformed."""
    if not 2 <= len(value) <= 9:
        return None
    digits, unit = value[:-1], value[-1:]
    scale = _TIMEOUT_UNITS.get(unit)
    if scale is None or not digits.isdigit():
        return None
    return int(digits) * scale
