"""Malformed requests (RFC 9113 §8.2-8.3): uppercase or connection-specific field names,
pseudo-headers after regular fields, unknown or repeated pseudo-headers, a missing :path,
:method or :scheme, forbidden characters in values, pseudo-headers in trailers. Each is a
stream error (RST_STREAM PROTOCOL_ERROR): the connection goes on, the next call on it is
answered, and the server never crashes."""

from __future__ import annotations

import pytest

from authz_server.h2grpc.frames import ErrorCode, Flag, FrameType, frame
from authz_server.h2grpc.grpc_wire import encode_headers
from tests.hostile.h2_raw import REQUEST, Worker, check_message, decided, headers_frame

REGULAR = [("content-type", "application/grpc"), ("te", "trailers")]
PSEUDO = [(":method", "POST"), (":scheme", "http"), (":path", "/envoy.service.auth.v3.Authorization/Check"),
          (":authority", "authz")]

MALFORMED = {
    "uppercase-name": PSEUDO + REGULAR + [("X-Upper", "1")],
    "connection": PSEUDO + REGULAR + [("connection", "keep-alive")],
    "keep-alive": PSEUDO + REGULAR + [("keep-alive", "5")],
    "transfer-encoding": PSEUDO + REGULAR + [("transfer-encoding", "chunked")],
    "upgrade": PSEUDO + REGULAR + [("upgrade", "h2c")],
    "proxy-connection": PSEUDO + REGULAR + [("proxy-connection", "close")],
    "te-not-trailers": PSEUDO + [("content-type", "application/grpc"), ("te", "gzip")],
    "pseudo-after-regular": PSEUDO[:3] + REGULAR + [(":authority", "authz")],
    "unknown-pseudo": PSEUDO + [(":protocol", "websocket")] + REGULAR,
    "response-pseudo": PSEUDO + [(":status", "200")] + REGULAR,
    "repeated-pseudo": PSEUDO + [(":path", "/other")] + REGULAR,
    "no-path": [p for p in PSEUDO if p[0] != ":path"] + REGULAR,
    "empty-path": [(n, "" if n == ":path" else v) for n, v in PSEUDO] + REGULAR,
    "no-method": [p for p in PSEUDO if p[0] != ":method"] + REGULAR,
    "no-scheme": [p for p in PSEUDO if p[0] != ":scheme"] + REGULAR,
    "newline-in-value": PSEUDO + REGULAR + [("x-a", "a\nb")],
    "nul-in-value": PSEUDO + REGULAR + [("x-a", "a\x00b")],
    "leading-space-in-value": PSEUDO + REGULAR + [("x-a", " a")],
    "space-in-name": PSEUDO + REGULAR + [("x a", "1")],
    "colon-in-name": PSEUDO + REGULAR + [("x:a", "1")],
    "empty-name": PSEUDO + REGULAR + [("", "1")],
}


@pytest.fixture(scope="module")
def worker():
    running = Worker()
    yield running
    running.stop()


@pytest.mark.parametrize("headers", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_request_is_a_stream_error_and_the_connection_goes_on(worker, headers):
    peer = worker.peer()
    try:
        peer.handshake()
        peer.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, encode_headers(headers)),
                  frame(FrameType.DATA, Flag.END_STREAM, 1, check_message()),
                  headers_frame(3), frame(FrameType.DATA, Flag.END_STREAM, 3, check_message()))
        received = peer.wait(lambda r: r.answered(3))
        assert received.resets().get(1) == ErrorCode.PROTOCOL_ERROR
        assert not received.answered(1) and received.answered(3) and received.goaway is None
    finally:
        peer.close()
    assert worker.alive()


def test_pseudo_headers_in_trailers_reset_the_stream(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        peer.send(headers_frame(1), frame(FrameType.DATA, 0, 1, check_message()),
                  frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, encode_headers([(":path", "/x")])))
        received = peer.wait(lambda r: 1 in r.resets())
        assert received.resets()[1] == ErrorCode.PROTOCOL_ERROR and received.goaway is None
    finally:
        peer.close()


def test_a_well_formed_request_with_every_kind_of_field_is_answered(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        headers = REQUEST + [("grpc-timeout", "1S"), ("user-agent", "envoy/1.40"), ("x-envoy-expected-rq-timeout-ms", "1500"),
                             ("x-a", "inner space ok"), ("x-b", "")]
        peer.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, encode_headers(headers)),
                  frame(FrameType.DATA, Flag.END_STREAM, 1, check_message()))
        received = peer.wait(lambda r: r.answered(1))
        assert received.answered(1) and not received.resets()
    finally:
        peer.close()
    assert decided(worker.check())
