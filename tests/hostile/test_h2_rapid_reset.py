"""Rapid reset (CVE-2023-44487): streams opened and reset in a loop, each a little work for
the server and none for the attacker. Past PORTCULLIS_AUTHZ_H2_MAX_EARLY_RESETS streams
ended before their answer (and more than half of the recent ones), the connection ends with
GOAWAY ENHANCE_YOUR_CALM; a client that resets now and then (Envoy cancelling a call) is
left alone."""

from __future__ import annotations

import pytest

from authz_server.h2grpc.frames import ErrorCode, Flag, FrameType, frame
from tests.hostile.h2_raw import Worker, answers_while, check_message, decided, headers_frame, rst


@pytest.fixture(scope="module")
def worker():
    running = Worker({"PORTCULLIS_AUTHZ_H2_MAX_EARLY_RESETS": "50"})
    yield running
    running.stop()


def _open_and_reset(count: int):
    for n in range(count):
        stream_id = 1 + 2 * n
        yield headers_frame(stream_id) + rst(stream_id)


def test_streams_opened_and_reset_in_a_loop_end_the_connection(worker):
    outcome = {}

    def attack():
        peer = worker.peer()
        try:
            peer.handshake()
            outcome["sent"] = peer.flood(_open_and_reset(100_000), batch=100)
            outcome["received"] = peer.wait_closed()
        finally:
            peer.close()

    before = worker.rss_kib()
    answers = answers_while(worker, attack)
    received = outcome["received"]
    assert received.closed and received.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM
    assert b"ended before their answer" in received.goaway[2]
    assert outcome["sent"] < 100_000
    assert all(decided(answer) for answer in answers)
    assert worker.rss_kib() - before < 32 * 1024


def test_calls_cancelled_now_and_then_keep_their_connection(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        stream_id = 1
        for _ in range(300):   # 300 cancels in all, one in three calls (the limit is 50)
            peer.send(headers_frame(stream_id), rst(stream_id))
            stream_id += 2
            for _ in range(2):
                peer.send(headers_frame(stream_id), frame(FrameType.DATA, Flag.END_STREAM, stream_id, check_message()))
                stream_id += 2
        last = stream_id - 2
        received = peer.wait(lambda r: r.answered(last))
        assert received.answered(last) and received.goaway is None
    finally:
        peer.close()


def test_refused_streams_count_too(worker):
    """Streams past MAX_CONCURRENT_STREAMS are refused at once: opening them in a loop is the
    same attack, with the server doing the resetting."""
    peer = worker.peer()
    try:
        peer.handshake()
        held = [headers_frame(1 + 2 * n) for n in range(256)]   # PORTCULLIS_AUTHZ_MAX_CONCURRENT_RPCS
        peer.send(*held)
        peer.flood(headers_frame(1 + 2 * n) for n in range(256, 20_000))
        received = peer.wait_closed()
        assert ErrorCode.REFUSED_STREAM in received.resets().values()
        assert received.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM
    finally:
        peer.close()
