"""Floods of frames that carry no call — SETTINGS, PING, empty DATA, WINDOW_UPDATE,
PRIORITY, unknown types — a peer that never acknowledges our SETTINGS, and a peer that
sends more DATA than the window it was given. Each ends the connection with the matching
GOAWAY (or the stream with RST_STREAM), the worker decides for others meanwhile, and its
memory stays bounded (a peer that reads none of our PING ACKs is paused, not buffered)."""

from __future__ import annotations

import struct

import pytest

from authz_server.h2grpc.frames import ErrorCode, Flag, FrameType, frame, settings_frame, window_update
from tests.hostile.h2_raw import SETTINGS_ACK, Worker, answers_while, check_message, decided, headers_frame, ping

FLOODS = {
    "settings": lambda n: settings_frame({}),
    "settings-with-many-entries": lambda n: frame(FrameType.SETTINGS, 0, 0, struct.pack(">HI", 4, 65_535) * 2000),
    "ping": lambda n: ping(),
    "unsolicited-ping-ack": lambda n: frame(FrameType.PING, Flag.ACK, 0, b"12345678"),
    "empty-data": lambda n: frame(FrameType.DATA, 0, 1, b""),
    "window-update": lambda n: window_update(0, 1),
    "priority": lambda n: frame(FrameType.PRIORITY, 0, 3, b"\x00\x00\x00\x00\x10"),
    "unknown-type": lambda n: frame(0x42, 0, 0, b"x"),
}


@pytest.fixture(scope="module")
def worker():
    running = Worker({"PORTCULLIS_AUTHZ_H2_SETTINGS_TIMEOUT_SECONDS": "0.5"})
    yield running
    running.stop()


@pytest.mark.parametrize("kind", list(FLOODS))
def test_a_flood_of_frames_without_calls_ends_the_connection(worker, kind):
    outcome = {}

    def attack():
        peer = worker.peer()
        try:
            peer.handshake()
            peer.send(headers_frame(1))   # an open stream, for the empty DATA
            outcome["sent"] = peer.flood(FLOODS[kind](n) for n in range(200_000))
            outcome["received"] = peer.wait_closed()
        finally:
            peer.close()

    answers = answers_while(worker, attack)
    received = outcome["received"]
    assert received.goaway is not None and received.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM
    assert b"without a call" in received.goaway[2]
    assert outcome["sent"] < 200_000
    assert all(decided(answer) for answer in answers)


def test_a_ping_flood_from_a_peer_that_reads_nothing_leaves_memory_bounded(worker):
    worker.check()
    before = worker.rss_kib()
    for _ in range(10):
        peer = worker.peer()
        peer.handshake()
        # A reader that never reads: the peer's own socket is not drained either.
        peer.flood(ping() for _ in range(100_000))
        peer.close()
    assert worker.rss_kib() - before < 32 * 1024
    assert decided(worker.check())


def test_a_peer_that_never_acknowledges_our_settings_is_closed(worker):
    peer = worker.peer()
    try:
        peer.handshake(acknowledge=False)
        received = peer.wait_closed()
        assert received.goaway[1] == ErrorCode.SETTINGS_TIMEOUT
    finally:
        peer.close()
    assert decided(worker.check())


def test_unfinished_requests_cannot_hold_more_than_the_connection_bound(worker):
    """Twenty messages of 4 MiB that never end: the 16 MiB a connection may hold of
    unfinished requests is reached before the 64 MiB connection window."""
    peer = worker.peer()
    try:
        peer.handshake()
        frames = []
        for n in range(20):
            stream_id = 1 + 2 * n
            frames.append(headers_frame(stream_id))
            frames.extend(frame(FrameType.DATA, 0, stream_id, b"\x00" * 16_384) for _ in range(256))
        peer.flood(iter(frames), batch=64)
        received = peer.wait_closed()
        assert received.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM and b"unfinished requests" in received.goaway[2]
    finally:
        peer.close()
    assert decided(worker.check())


def test_data_beyond_a_stream_window_resets_the_stream(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        peer.wait(lambda r: any(f == Flag.ACK for t, f, _, _ in r.of_type(FrameType.SETTINGS)))
        peer.send(headers_frame(1))
        # Padded frames count against the window but not against the message: 4 MiB + 1 KiB
        # of window runs out long before the message limit.
        padded = frame(FrameType.DATA, Flag.PADDED, 1, b"\xff" + b"\x00" * 255 + b"\x00" * 255)
        peer.flood(padded for _ in range(8300))
        received = peer.wait(lambda r: 1 in r.resets())
        assert received.resets().get(1) == ErrorCode.FLOW_CONTROL_ERROR
        assert received.goaway is None
    finally:
        peer.close()


def test_an_acknowledging_peer_gets_its_calls_answered(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        peer.send(SETTINGS_ACK, headers_frame(1), frame(FrameType.DATA, Flag.END_STREAM, 1, check_message()))
        received = peer.wait(lambda r: r.answered(1))
        assert received.answered(1)
    finally:
        peer.close()
