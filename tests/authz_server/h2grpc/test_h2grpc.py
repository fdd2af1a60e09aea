"""The native gRPC front end (authz_server.h2grpc) on 127.0.0.1, port 0, asked by two
independent clients: grpcio's channel (what a gRPC user has) and the `h2` library over a
raw socket (to send what a well-behaved client never would)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from authz_server.h2grpc.connection import Limits
from authz_server.h2grpc.event_loop import EVENT_LOOPS
from authz_server.h2grpc.frames import PREFACE, ErrorCode, FrameType, frame, settings_frame
from authz_server.h2grpc.grpc_wire import GrpcError, StatusCode, parse_timeout, percent_encode
from authz_server.h2grpc.offload_hook import OffloadHook
from authz_server.h2grpc.server import H2GrpcServer

BIG = 200_000


# The server's only tie to its handlers: a hook of the test's own, to show it needs no other.
_on_loop = threading.local()


class _MustMove(BaseException):
    pass


@contextmanager
def _inline() -> Iterator[None]:
    _on_loop.inline = True
    try:
        yield
    finally:
        _on_loop.inline = False


HOOK = OffloadHook(inline=_inline, would_block=_MustMove)


def _slow(message: bytes) -> bytes:
    if getattr(_on_loop, "inline", False):
        raise _MustMove()   # inline: move to a thread, as a JWKS fetch would
    time.sleep(float(message or b"0.05"))
    return threading.current_thread().name.encode()


def _refuse(message: bytes) -> bytes:
    raise GrpcError(StatusCode.NOT_FOUND, "nothing called ünïcode% here")


def _boom(message: bytes) -> bytes:
    raise RuntimeError("a bug")


HANDLERS = {
    "/t.T/Echo": lambda message: message,
    "/t.T/Big": lambda message: b"x" * BIG,
    "/t.T/Slow": _slow,
    "/t.T/Refuse": _refuse,
    "/t.T/Boom": _boom,
}


@pytest.fixture(params=EVENT_LOOPS)
def server(request):
    """On each event loop the front end runs on (PORTCULLIS_AUTHZ_EVENT_LOOP)."""
    running = H2GrpcServer(HANDLERS, limits=Limits(max_concurrent_streams=8, max_message_bytes=64 * 1024),
                           blocking_threads=2, max_offloaded=3, offload_hook=HOOK, event_loop=request.param)
    running.start()
    yield running
    running.stop(grace=0.5)
    assert running.held == 0   # the worker's total is its connections' sum: nothing left once all are gone


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


def call(channel, method, payload=b"", timeout=5):
    return channel.unary_unary(method)(payload, timeout=timeout)


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# --- through grpcio's client ------------------------------------------------------------


def test_echo_and_a_response_larger_than_a_frame_and_the_default_window(channel):
    assert call(channel, "/t.T/Echo", b"hello") == b"hello"
    assert call(channel, "/t.T/Echo", b"") == b""
    assert call(channel, "/t.T/Big") == b"x" * BIG


def test_many_calls_at_once_on_one_connection(channel):
    calls = [channel.unary_unary("/t.T/Echo").future(str(n).encode(), timeout=10) for n in range(500)]
    assert [c.result() for c in calls] == [str(n).encode() for n in range(500)]


@pytest.mark.parametrize(("method", "payload", "code", "details"), [
    ("/t.T/Nope", b"", grpc.StatusCode.UNIMPLEMENTED, "unknown method /t.T/Nope"),
    ("/t.T/Refuse", b"", grpc.StatusCode.NOT_FOUND, "nothing called ünïcode% here"),
    ("/t.T/Boom", b"", grpc.StatusCode.INTERNAL, "internal error"),
    ("/t.T/Echo", b"x" * (65 * 1024), grpc.StatusCode.RESOURCE_EXHAUSTED, "the request message exceeds 65536 bytes"),
], ids=["unknown-method", "handler-status", "handler-bug", "message-too-large"])
def test_errors_are_grpc_statuses(channel, method, payload, code, details):
    with pytest.raises(grpc.RpcError) as raised:
        call(channel, method, payload)
    assert raised.value.code() == code
    assert raised.value.details() == details


def test_a_call_that_would_block_runs_on_a_thread_and_the_loop_keeps_answering(server, channel):
    slow = channel.unary_unary("/t.T/Slow").future(b"2", timeout=10)
    wait_until(lambda: server.waiting == 1)
    assert call(channel, "/t.T/Echo", b"meanwhile") == b"meanwhile"
    assert not slow.done()   # answered while the slow call still waits on its thread
    assert slow.result().startswith(b"authz-blocking")


def test_waiting_calls_are_bounded(server, channel):
    waiting = [channel.unary_unary("/t.T/Slow").future(b"0.5", timeout=10) for _ in range(3)]
    wait_until(lambda: server.waiting == 3)
    with pytest.raises(grpc.RpcError) as raised:
        call(channel, "/t.T/Slow", b"0.5")
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert all(w.result() for w in waiting)


def test_a_waiting_call_past_its_deadline_is_not_answered_late(channel):
    with pytest.raises(grpc.RpcError) as raised:
        call(channel, "/t.T/Slow", b"0.4", timeout=0.1)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert call(channel, "/t.T/Echo", b"after") == b"after"


def test_graceful_stop_finishes_calls_under_way():
    running = H2GrpcServer(HANDLERS, blocking_threads=1, offload_hook=HOOK)
    running.start()
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        slow = channel.unary_unary("/t.T/Slow").future(b"0.3", timeout=10)
        wait_until(lambda: running.waiting == 1)
        running.stop(grace=5.0)
        assert slow.result().startswith(b"authz-blocking")


def test_a_taken_port_fails_loudly(server):
    with pytest.raises(OSError):
        H2GrpcServer(HANDLERS, port=server.port).start()


# --- through a raw socket and the h2 library --------------------------------------------


class RawClient:
    def __init__(self, port: int, settings: dict | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def request(self, path: str, body: bytes, *, method: str = "POST", content_type: str = "application/grpc",
                extra: list[tuple[str, str]] = (), end: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "t"),
                   ("content-type", content_type), ("te", "trailers"), *extra]
        self.conn.send_headers(stream_id, headers, end_stream=not body and end)
        for offset in range(0, len(body), 16_384):   # the server's MAX_FRAME_SIZE
            chunk = body[offset:offset + 16_384]
            self.conn.send_data(stream_id, chunk, end_stream=end and offset + 16_384 >= len(body))
        self.flush()
        return stream_id

    def events(self, until, *, window_updates: bool = True) -> list:
        """Read until `until(events)` holds (or the server closes)."""
        seen: list = []
        while not until(seen):
            data = self.sock.recv(65536)
            if not data:
                break
            for event in self.conn.receive_data(data):
                seen.append(event)
                if window_updates and isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.flush()
        return seen

    def close(self) -> None:
        self.sock.close()


def grpc_message(payload: bytes, *, compressed: int = 0) -> bytes:
    return struct.pack(">BI", compressed, len(payload)) + payload


def ended(stream_id):
    return lambda events: any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == stream_id
                              for e in events)


def answer(events, stream_id) -> tuple[dict, bytes, dict]:
    headers = [e.headers for e in events if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id]
    data = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id)
    trailers = [e.headers for e in events if isinstance(e, h2.events.TrailersReceived) and e.stream_id == stream_id]
    return dict(headers[0]) if headers else {}, data, dict(trailers[0]) if trailers else {}


@pytest.fixture
def raw(server):
    client = RawClient(server.port)
    yield client
    client.close()


def test_raw_echo_has_grpc_headers_and_trailers(raw):
    stream_id = raw.request("/t.T/Echo", grpc_message(b"hi"))
    headers, data, trailers = answer(raw.events(ended(stream_id)), stream_id)
    assert headers[":status"] == "200" and headers["content-type"] == "application/grpc"
    assert data == grpc_message(b"hi")
    assert trailers["grpc-status"] == "0"


@pytest.mark.parametrize(("method", "content_type", "status"), [
    ("GET", "application/grpc", "405"),
    ("POST", "application/json", "415"),
])
def test_not_a_grpc_request_gets_a_plain_http_error(raw, method, content_type, status):
    stream_id = raw.request("/t.T/Echo", grpc_message(b"hi"), method=method, content_type=content_type)
    headers, _, _ = answer(raw.events(ended(stream_id)), stream_id)
    assert headers[":status"] == status


@pytest.mark.parametrize(("body", "code"), [
    (b"", StatusCode.INTERNAL),
    (b"\x00\x00\x00", StatusCode.INTERNAL),
    (grpc_message(b"a") + grpc_message(b"b"), StatusCode.INTERNAL),
    (grpc_message(b"a", compressed=1), StatusCode.UNIMPLEMENTED),
    (grpc_message(b"a", compressed=7), StatusCode.INTERNAL),
], ids=["no-message", "short-prefix", "two-messages", "compressed", "bad-flag"])
def test_a_body_that_is_not_one_message_is_refused(raw, body, code):
    stream_id = raw.request("/t.T/Echo", body)
    headers, data, _ = answer(raw.events(ended(stream_id)), stream_id)
    assert headers["grpc-status"] == str(int(code)) and data == b""


def test_flow_control_holds_the_answer_until_the_client_opens_its_window(server):
    client = RawClient(server.port, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    try:
        client.events(lambda events: any(isinstance(e, h2.events.SettingsAcknowledged) for e in events))
        stream_id = client.request("/t.T/Big", grpc_message(b""))
        first = client.events(lambda events: sum(len(e.data) for e in events if isinstance(e, h2.events.DataReceived)) >= 1000,
                              window_updates=False)
        assert sum(len(e.data) for e in first if isinstance(e, h2.events.DataReceived)) == 1000
        for event in first:
            if isinstance(event, h2.events.DataReceived):
                client.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
        client.conn.increment_flow_control_window(BIG, stream_id)
        client.conn.increment_flow_control_window(BIG)
        client.flush()
        rest = client.events(ended(stream_id))
        data = b"".join(e.data for e in first + rest if isinstance(e, h2.events.DataReceived))
        assert data == grpc_message(b"x" * BIG)
        # While it waited for window the answer counted towards the worker's bytes; now nothing is held.
        wait_until(lambda: server.held == 0)
    finally:
        client.close()


def test_a_header_block_split_over_continuation_frames(raw):
    stream_id = raw.request("/t.T/Echo", grpc_message(b"big headers"), extra=[("x-long", "v" * 40_000)])
    headers, data, trailers = answer(raw.events(ended(stream_id)), stream_id)
    assert data == grpc_message(b"big headers") and trailers["grpc-status"] == "0"


def test_a_reset_stream_is_forgotten_and_the_connection_goes_on(raw):
    stream_id = raw.request("/t.T/Echo", grpc_message(b"half"), end=False)
    raw.conn.reset_stream(stream_id)
    raw.flush()
    again = raw.request("/t.T/Echo", grpc_message(b"next"))
    _, data, _ = answer(raw.events(ended(again)), again)
    assert data == grpc_message(b"next")


def test_streams_beyond_the_limit_are_refused(raw):
    open_ids = [raw.request("/t.T/Echo", grpc_message(b"x"), end=False) for _ in range(8)]
    refused = raw.request("/t.T/Echo", grpc_message(b"x"), end=False)
    events = raw.events(ended(refused))
    reset = [e for e in events if isinstance(e, h2.events.StreamReset) and e.stream_id == refused]
    assert reset and reset[0].error_code == ErrorCode.REFUSED_STREAM
    assert refused not in open_ids


def test_ping_is_answered(raw):
    raw.conn.ping(b"12345678")
    raw.flush()
    events = raw.events(lambda events: any(isinstance(e, h2.events.PingAckReceived) for e in events))
    assert [e.ping_data for e in events if isinstance(e, h2.events.PingAckReceived)] == [b"12345678"]


def _goaway_code(sock: socket.socket) -> int | None:
    """The error code of the GOAWAY the server sent before closing, or None."""
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    position = 0
    while position + 9 <= len(received):
        length = int.from_bytes(received[position:position + 3], "big")
        if received[position + 3] == FrameType.GOAWAY:
            return int.from_bytes(received[position + 13:position + 17], "big")
        position += 9 + length
    return None


@pytest.mark.parametrize(("sent", "code"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrorCode.PROTOCOL_ERROR),
    (PREFACE + frame(FrameType.PING, 0, 0, b"12345678"), ErrorCode.PROTOCOL_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.DATA, 1, 0, b"x"), ErrorCode.PROTOCOL_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.HEADERS, 4, 2, b"\x88"), ErrorCode.PROTOCOL_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.HEADERS, 4, 1, b"\xff\xff\xff\xff"), ErrorCode.COMPRESSION_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.HEADERS, 0, 1, b"\x82") + frame(FrameType.PING, 0, 0, b"12345678"),
     ErrorCode.PROTOCOL_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.HEADERS, 0, 1, b"\x82")
     + b"".join(frame(FrameType.CONTINUATION, 0, 1, b"\x82" * 16_000) for _ in range(5)), ErrorCode.ENHANCE_YOUR_CALM),
    (PREFACE + settings_frame({}) + b"\x00\x40\x01" + b"\x00\x00\x00\x00\x00\x00" + b"x" * 16385, ErrorCode.FRAME_SIZE_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.WINDOW_UPDATE, 0, 0, b"\x7f\xff\xff\xff"), ErrorCode.FLOW_CONTROL_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"), ErrorCode.PROTOCOL_ERROR),
    (PREFACE + frame(FrameType.SETTINGS, 0, 0, b"\x00\x05\x00\x00\x00\x01"), ErrorCode.PROTOCOL_ERROR),
    (PREFACE + frame(FrameType.SETTINGS, 0, 0, b"\x00\x04\x80\x00\x00\x00"), ErrorCode.FLOW_CONTROL_ERROR),
    (PREFACE + frame(FrameType.SETTINGS, 0, 0, b"\x00\x04\x00"), ErrorCode.FRAME_SIZE_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.PUSH_PROMISE, 4, 1, b"\x00\x00\x00\x02\x82"), ErrorCode.PROTOCOL_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.RST_STREAM, 0, 9, b"\x00\x00\x00\x08"), ErrorCode.PROTOCOL_ERROR),
    (PREFACE + settings_frame({}) + frame(FrameType.DATA, 8, 1, b"\x05ab"), ErrorCode.PROTOCOL_ERROR),
], ids=["http1", "first-frame-not-settings", "data-on-stream-0", "even-stream-id", "bad-hpack",
        "interrupted-header-block", "header-block-flood", "frame-too-large", "window-overflow", "zero-increment",
        "bad-max-frame-size", "bad-initial-window", "settings-not-multiple-of-6", "client-push",
        "reset-of-idle-stream", "padding-longer-than-frame"])
def test_protocol_violations_end_the_connection_with_goaway(server, sent, code):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(sent)
        assert _goaway_code(sock) == code


def test_the_server_survives_every_violation(server, channel):
    for garbage in (b"\x00" * 100, PREFACE + b"\xff" * 50, PREFACE + settings_frame({}) + b"\x00\x00\x01\x01\x05\x00\x00\x00\x01\xff"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(garbage)
            _goaway_code(sock)
    assert call(channel, "/t.T/Echo", b"still here") == b"still here"


# --- wire helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    (b"1S", 1.0), (b"250m", 0.25), (b"2M", 120.0), (b"1H", 3600.0), (b"99999999u", 99.999999), (b"5n", 5e-9),
    (b"", None), (b"S", None), (b"123456789S", None), (b"1s", None), (b"-1S", None), (b"1.5S", None),
])
def test_grpc_timeout(value, seconds):
    assert parse_timeout(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_grpc_message_is_percent_encoded():
    assert percent_encode("a b%c\né") == "a b%25c%0A%C3%A9"


def test_unfinished_requests_cannot_hold_more_than_the_connection_limit():
    running = H2GrpcServer(HANDLERS, limits=Limits(max_message_bytes=64 * 1024, max_buffered_bytes=100_000))
    running.start()
    client = RawClient(running.port)
    try:
        client.events(lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events))
        for _ in range(3):
            client.request("/t.T/Echo", b"\x00" * 40_000, end=False)
        events = client.events(lambda events: any(isinstance(e, h2.events.ConnectionTerminated) for e in events))
        closed = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert closed and closed[0].error_code == ErrorCode.ENHANCE_YOUR_CALM
    finally:
        client.close()
        running.stop(grace=0.1)
