"""A worker's bytes, all connections together: many peers, each under its own caps (16 MiB
of unfinished requests, one message per stream), could together hold what no worker has.
Past PORTCULLIS_AUTHZ_H2_MAX_WORKER_HELD_BYTES (8 MiB here) the connection holding the most
is ended with GOAWAY ENHANCE_YOUR_CALM, and its new streams are refused meanwhile; Check
on other connections is answered throughout and the worker's memory stays bounded."""

from __future__ import annotations

import time

import pytest

from authz_server.h2grpc.connection import Limits
from authz_server.h2grpc.frames import PREFACE, ErrorCode, Flag, FrameType, Setting, frame, settings_frame
from authz_server.h2grpc.server import H2GrpcServer
from tests.hostile.h2_raw import (
    REQUEST,
    SETTINGS_ACK,
    RawPeer,
    Worker,
    answers_while,
    check_message,
    decided,
    headers_frame,
    ping,
)

MIB = 1024 * 1024
CAP = 8 * MIB
CHUNK = 16_384   # the largest DATA frame a peer may send without asking


@pytest.fixture(scope="module")
def worker():
    running = Worker({"PORTCULLIS_AUTHZ_H2_MAX_WORKER_HELD_BYTES": str(CAP)})
    yield running
    running.stop()


def _synced(peer: RawPeer, token: bytes) -> bool:
    """True once the server answered a PING sent after everything before it (it reads in order)."""
    peer.send(ping(token))
    received = peer.wait(lambda r: any(f[0] == FrameType.PING and f[3] == token for f in r.frames))
    return any(f[0] == FrameType.PING and f[3] == token for f in received.frames)


def _hold(peer: RawPeer, megabytes: float, first_stream: int = 1, per_stream: int = 2 * MIB) -> None:
    """Unfinished requests of `megabytes` in all (no END_STREAM): held until the call ends."""
    remaining, stream_id = int(megabytes * MIB), first_stream
    while remaining > 0 and not peer.received.closed:
        size = min(per_stream, remaining)
        frames = [headers_frame(stream_id)] + [frame(FrameType.DATA, 0, stream_id, b"\x00" * CHUNK)
                                               for _ in range(size // CHUNK)]
        if not peer.send(*frames):
            return
        remaining -= size
        stream_id += 2


def test_the_connection_holding_the_most_is_ended_and_the_others_go_on(worker):
    biggest, small, crossing = worker.peer(), worker.peer(), worker.peer()
    try:
        for peer in (biggest, small, crossing):
            peer.handshake()
        _hold(biggest, 4)
        assert _synced(biggest, b"biggest!")
        _hold(small, 1)
        assert _synced(small, b"small-ok")
        _hold(crossing, 3.5)   # 8.5 MiB in all: past the worker's 8
        ended = biggest.wait_closed()
        assert ended.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM and b"holds more than" in ended.goaway[2]
        # The others keep their unfinished streams, and are answered.
        for peer, token in ((small, b"small-on"), (crossing, b"cross-on")):
            assert _synced(peer, token) and not peer.received.closed
            peer.send(headers_frame(101), frame(FrameType.DATA, Flag.END_STREAM, 101, check_message()))
            assert peer.wait(lambda r: r.answered(101)).answered(101)
        assert decided(worker.check())
    finally:
        for peer in (biggest, small, crossing):
            peer.close()


def test_a_connection_that_is_itself_the_worst_is_ended(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        _hold(peer, 9)   # under the connection's own 16 MiB, over the worker's 8
        received = peer.wait_closed()
        assert received.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM and b"the most of the worker" in received.goaway[2]
    finally:
        peer.close()
    assert decided(worker.check())


def test_many_connections_cannot_hold_more_than_the_worker_cap(worker):
    before = worker.rss_kib()
    peers = [worker.peer() for _ in range(20)]
    outcome: dict[str, int] = {}

    def attack() -> None:
        for peer in peers:
            peer.handshake()
            _hold(peer, 2)   # 40 MiB attempted
        time.sleep(0.2)
        outcome["ended"] = sum(peer.wait(lambda r: False, timeout=0.05).closed for peer in peers)
        outcome["rss"] = worker.rss_kib()

    try:
        answers = answers_while(worker, attack)
        assert all(decided(answer) for answer in answers)
        # At most 8 MiB stays held: four 2 MiB connections (the ended ones freed theirs at once).
        assert outcome["ended"] >= 16
        assert outcome["rss"] - before < 3 * CAP // 1024
    finally:
        for peer in peers:
            peer.close()
    assert decided(worker.check()) and worker.alive()


def test_new_streams_of_the_worst_are_refused_and_another_connection_ends_it():
    """Answers held back by a peer that grants no window count too (they are not relieved as
    they are queued): the worst offender's next stream is refused, and a call on another
    connection ends it and is answered."""
    running = H2GrpcServer({"/t.T/Big": lambda message: b"x" * 3000},
                           limits=Limits(max_worker_held_bytes=5000))
    running.start()
    hoarder, other = RawPeer(running.port), RawPeer(running.port)
    big = [(name, "/t.T/Big" if name == ":path" else value) for name, value in REQUEST]
    try:
        hoarder.send(PREFACE + settings_frame({Setting.INITIAL_WINDOW_SIZE: 0}))
        hoarder.wait(lambda r: bool(r.of_type(FrameType.SETTINGS)))
        hoarder.send(SETTINGS_ACK)
        for stream_id in (1, 3):   # two answers of 3000 bytes wait for a window that never comes
            hoarder.send(headers_frame(stream_id, big), frame(FrameType.DATA, Flag.END_STREAM, stream_id,
                                                               b"\x00\x00\x00\x00\x00"))
        assert _synced(hoarder, b"hoarding") and running.held > 5000
        hoarder.send(headers_frame(5, big, end_stream=True))
        assert hoarder.wait(lambda r: 5 in r.resets()).resets()[5] == ErrorCode.REFUSED_STREAM
        other.handshake()
        other.send(headers_frame(1, big), frame(FrameType.DATA, Flag.END_STREAM, 1, b"\x00\x00\x00\x00\x00"))
        assert other.wait(lambda r: r.answered(1)).answered(1)
        assert hoarder.wait_closed().goaway[1] == ErrorCode.ENHANCE_YOUR_CALM
        assert running.held == 0
    finally:
        hoarder.close()
        other.close()
        running.stop(grace=0.1)
