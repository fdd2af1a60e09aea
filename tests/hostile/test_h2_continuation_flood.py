"""CONTINUATION floods (the 2024 class): header blocks that never end, with frames full or
empty. The front end caps a header block in bytes and in frames (PORTCULLIS_AUTHZ_H2_MAX_
HEADER_BLOCK_*), ends the connection with ENHANCE_YOUR_CALM, keeps deciding for others,
and holds no more memory after many such connections than before."""

from __future__ import annotations

import pytest

from authz_server.h2grpc.frames import ErrorCode, Flag, FrameType, frame
from authz_server.h2grpc.grpc_wire import encode_headers
from tests.hostile.h2_raw import REQUEST, Worker, answers_while, check_message, decided, headers_frame



@pytest.fixture(scope="module")
def worker():
    running = Worker()
    yield running
    running.stop()


def _flood(worker: Worker, payload: bytes, frames: int):
    peer = worker.peer()
    try:
        peer.handshake()
        peer.send(headers_frame(1, end_headers=False))
        sent = peer.flood(frame(FrameType.CONTINUATION, 0, 1, payload) for _ in range(frames))
        return sent, peer.wait_closed()
    finally:
        peer.close()


@pytest.mark.parametrize("payload", [b"", b"\x82", b"\x82" * 16_000], ids=["empty", "one-byte", "full"])
def test_a_header_block_that_never_ends_ends_its_connection_and_others_are_answered(worker, payload):
    outcome = {}
    answers = answers_while(worker, lambda: outcome.update(result=_flood(worker, payload, 100_000)))
    sent, received = outcome["result"]
    assert received.closed and received.goaway is not None
    assert received.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM
    assert b"header block" in received.goaway[2]
    assert sent < 100_000   # cut off long before the flood ran out
    assert all(decided(answer) for answer in answers)


def test_many_flooding_connections_leave_memory_bounded(worker):
    worker.check()
    before = worker.rss_kib()
    for _ in range(20):
        _flood(worker, b"", 50_000)
        _flood(worker, b"\x82" * 16_000, 100)
    assert worker.rss_kib() - before < 32 * 1024
    assert decided(worker.check())


def test_a_header_block_in_many_small_frames_under_the_cap_is_still_a_call(worker):
    block = encode_headers(REQUEST)
    pieces = [block[n:n + 4] for n in range(0, len(block), 4)][:31]
    pieces[-1] += block[4 * 31:]
    peer = worker.peer()
    try:
        peer.handshake()
        first, rest = pieces[0], pieces[1:]
        peer.send(frame(FrameType.HEADERS, 0, 1, first),
                  *(frame(FrameType.CONTINUATION, Flag.END_HEADERS if n == len(rest) - 1 else 0, 1, piece)
                    for n, piece in enumerate(rest)),
                  frame(FrameType.DATA, Flag.END_STREAM, 1, check_message()))
        received = peer.wait(lambda r: r.answered(1))
        assert received.answered(1) and received.goaway is None
    finally:
        peer.close()
