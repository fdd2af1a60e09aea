"""Property tests of the native gRPC front end's HTTP/2 connection: whatever bytes arrive,
in whatever pieces, the connection never raises, answers only with well-formed frames,
and a well-formed call that follows on a fresh connection is still answered."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz_server.h2grpc.connection import H2GrpcConnection, Limits
from authz_server.h2grpc.frames import PREFACE, FrameType, frame, settings_frame
from authz_server.h2grpc.grpc_wire import encode_headers
from authz_server.h2grpc.offload_hook import NEVER_OFFLOAD


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed or not data, "wrote after closing"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class FakeCore:
    """Just what a connection asks of the server: handlers inline, nothing offloaded."""

    def __init__(self) -> None:
        self.handlers = {b"/t.T/Echo": lambda message: message}
        self.limits = Limits(max_concurrent_streams=4, max_message_bytes=4096, max_header_block_bytes=4096,
                             max_worker_held_bytes=6000)   # under what 4 streams may hold: its relief is fuzzed too
        self.connections: set = set()
        self.loop = type("Clock", (), {"time": staticmethod(lambda: 0.0)})()
        self.offload_hook = NEVER_OFFLOAD
        self.held = 0

    def relieve(self, current) -> bool:   # one connection: it is always the worst
        return False

    def offload(self, connection, stream, handler, message):  # pragma: no cover - no handler blocks here
        raise AssertionError("nothing here waits")


def _frames_written(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """Every frame the server wrote; asserts they parse back exactly."""
    frames, position = [], 0
    while position < len(data):
        assert len(data) - position >= 9
        length = int.from_bytes(data[position:position + 3], "big")
        frame_type, flags = data[position + 3], data[position + 4]
        stream_id = int.from_bytes(data[position + 5:position + 9], "big")
        payload = data[position + 9:position + 9 + length]
        assert len(payload) == length
        frames.append((frame_type, flags, stream_id, payload))
        position += 9 + length
    return frames


def _connection() -> tuple[H2GrpcConnection, FakeTransport]:
    connection = H2GrpcConnection(FakeCore())
    # Every test ends with the worker's total equal to what its one connection holds.
    _checked.append(connection)
    transport = FakeTransport()
    connection.connection_made(transport)
    return connection, transport


REQUEST_HEADERS = encode_headers([(":method", "POST"), (":scheme", "http"), (":path", "/t.T/Echo"),
                                  (":authority", "t"), ("content-type", "application/grpc")])


def _call(stream_id: int, payload: bytes) -> bytes:
    body = struct.pack(">BI", 0, len(payload)) + payload
    return frame(FrameType.HEADERS, 0x4, stream_id, REQUEST_HEADERS) + frame(FrameType.DATA, 0x1, stream_id, body)


_checked: list[H2GrpcConnection] = []


def _held_bytes_agree() -> None:
    """The worker's total is its connection's bytes, and nothing once the connection is lost."""
    while _checked:
        connection = _checked.pop()
        core = connection._core
        assert core.held == connection.held >= 0
        connection.connection_lost(None)
        assert core.held == connection.held == 0


random_frame = st.builds(
    lambda frame_type, flags, stream_id, payload: frame(frame_type, flags, stream_id, payload),
    st.integers(0, 12), st.integers(0, 255), st.sampled_from([0, 1, 2, 3, 5, 2**31 - 1]),
    st.binary(max_size=64),
)


def _feed(connection: H2GrpcConnection, data: bytes, cuts: list[int]) -> None:
    start = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        if cut > start:
            connection.data_received(data[start:cut])
            start = cut


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(random_frame, max_size=12), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_random_frames_after_a_valid_start_never_raise(frames, cuts):
    connection, transport = _connection()
    data = PREFACE + settings_frame({}) + _call(1, b"first") + b"".join(frames) + _call(101, b"last")
    _feed(connection, data, cuts)
    written = _frames_written(bytes(transport.written))
    # The first call, before any garbage, is always answered in full.
    assert any(t == FrameType.DATA and s == 1 for t, _, s, _ in written)
    if not transport.closed:
        goaways = [payload for t, _, _, payload in written if t == FrameType.GOAWAY]
        assert not goaways
    _held_bytes_agree()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=5))
def test_random_bytes_never_raise(data, cuts):
    connection, transport = _connection()
    _feed(connection, PREFACE + data, cuts)
    _frames_written(bytes(transport.written))
    _held_bytes_agree()


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 10_000), max_size=20), payloads=st.lists(st.binary(max_size=600), min_size=1, max_size=5))
def test_calls_cut_into_any_pieces_are_answered_in_order(cuts, payloads):
    connection, transport = _connection()
    data = PREFACE + settings_frame({}) + b"".join(_call(1 + 2 * n, p) for n, p in enumerate(payloads))
    _feed(connection, data, cuts)
    answers = [payload for t, _, _, payload in _frames_written(bytes(transport.written)) if t == FrameType.DATA]
    assert answers == [struct.pack(">BI", 0, len(p)) + p for p in payloads]
    assert not transport.closed


header_lists = st.lists(
    st.lists(st.tuples(st.sampled_from(["x-a", "x-b", "content-type", "grpc-timeout", "x-long"]),
                       st.sampled_from(["1", "2", "application/grpc", "1500m", "v" * 300])),
             min_size=1, max_size=4),
    min_size=1, max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(lists=header_lists, table_sizes=st.lists(st.sampled_from([0, 64, 256, 4096]), max_size=3),
       resize_at=st.lists(st.integers(0, 29), max_size=3), repeat=st.integers(1, 3))
def test_reused_header_blocks_decode_exactly_as_a_fresh_decoder_would(lists, table_sizes, resize_at, repeat):
    """The connection remembers decoded blocks; with the encoder's table changing (new
    entries, evictions, size updates) every block must still read as hpack reads it."""
    from hpack import Decoder, Encoder

    connection, _ = _connection()
    reference, encoder = Decoder(), Encoder()
    resizes = dict(zip(resize_at, table_sizes))
    for position, headers in enumerate(lists):
        if position in resizes:
            encoder.header_table_size = resizes[position]
        for _ in range(repeat):
            block = encoder.encode(headers)
            assert connection._decode(block) == reference.decode(block, raw=True)
