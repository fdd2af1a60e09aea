"""Slow and idle peers: a connection that never sends its preface, a header block or a
request message that never ends, an idle connection, and more connections than a worker
holds. Each is ended by the front end's timeouts (PORTCULLIS_AUTHZ_H2_*_TIMEOUT_SECONDS,
short here) or refused at once (PORTCULLIS_AUTHZ_H2_MAX_CONNECTIONS); Check goes on."""

from __future__ import annotations

import socket

import pytest

from authz_server.h2grpc.frames import PREFACE, ErrorCode, Flag, FrameType, frame
from tests.hostile.h2_raw import RawPeer, Worker, check_message, decided, headers_frame

TIMEOUTS = {"PORTCULLIS_AUTHZ_H2_PREFACE_TIMEOUT_SECONDS": "0.5", "PORTCULLIS_AUTHZ_H2_REQUEST_TIMEOUT_SECONDS": "0.5",
            "PORTCULLIS_AUTHZ_H2_IDLE_TIMEOUT_SECONDS": "1", "PORTCULLIS_AUTHZ_H2_MAX_CONNECTIONS": "20"}


@pytest.fixture(scope="module")
def worker():
    running = Worker(TIMEOUTS)
    yield running
    running.stop()


@pytest.mark.parametrize("sent", [b"", PREFACE[:10]], ids=["nothing", "half-a-preface"])
def test_a_connection_without_its_preface_is_closed(worker, sent):
    peer = worker.peer()
    try:
        peer.send(sent)
        received = peer.wait_closed()
        assert received.closed and received.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM
        assert b"preface" in received.goaway[2]
    finally:
        peer.close()
    assert decided(worker.check())


def test_a_header_block_that_stops_halfway_ends_its_connection(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        peer.send(headers_frame(1, end_headers=False))
        received = peer.wait_closed()
        assert received.goaway[1] == ErrorCode.ENHANCE_YOUR_CALM and b"header block" in received.goaway[2]
    finally:
        peer.close()


def test_a_message_that_never_ends_resets_its_stream_and_the_connection_goes_on(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        peer.send(headers_frame(1), frame(FrameType.DATA, 0, 1, check_message()[:10]))
        received = peer.wait(lambda r: 1 in r.resets())
        assert received.resets()[1] == ErrorCode.CANCEL and not received.closed
        peer.send(headers_frame(3), frame(FrameType.DATA, Flag.END_STREAM, 3, check_message()))
        assert peer.wait(lambda r: r.answered(3)).answered(3)
    finally:
        peer.close()


def test_an_idle_connection_is_closed_gracefully(worker):
    peer = worker.peer()
    try:
        peer.handshake()
        peer.send(headers_frame(1), frame(FrameType.DATA, Flag.END_STREAM, 1, check_message()))
        received = peer.wait_closed()
        assert received.answered(1)
        goaways = [f for f in received.frames if f[0] == FrameType.GOAWAY]
        # First "no stream after 2^31-1", then the last stream it processed: both NO_ERROR.
        assert [(int.from_bytes(g[3][:4], "big"), int.from_bytes(g[3][4:8], "big")) for g in goaways] == [
            (2**31 - 1, ErrorCode.NO_ERROR), (1, ErrorCode.NO_ERROR)]
    finally:
        peer.close()


def test_connections_beyond_the_cap_are_refused_at_once_and_served_again_once_freed(worker):
    worker.check()   # the legitimate grpcio connection is one of the 20
    held = [RawPeer(worker.port) for _ in range(30)]
    try:
        for peer in held:
            peer.send(PREFACE)   # partway through the handshake: held, not idle yet
        # Every one is closed in the end (the refused at once, the rest by the preface timeout).
        outcomes = [peer.wait_closed().goaway for peer in held]
        refused = [goaway for goaway in outcomes if goaway[2] == b"too many connections"]
        assert len(refused) == 11 and all(goaway[1] == ErrorCode.ENHANCE_YOUR_CALM for goaway in refused)
        assert all(b"preface" in goaway[2] for goaway in outcomes if goaway not in refused)
        assert decided(worker.check())   # the existing connection is served meanwhile
    finally:
        for peer in held:
            peer.close()
    # Once they are gone (or timed out), new connections are served.
    fresh = worker.peer()
    try:
        fresh.handshake()
        fresh.send(headers_frame(1), frame(FrameType.DATA, Flag.END_STREAM, 1, check_message()))
        assert fresh.wait(lambda r: r.answered(1) or r.goaway is not None).answered(1)
    finally:
        fresh.close()


def test_the_worker_still_answers_after_all_of_it(worker):
    with socket.create_connection(("127.0.0.1", worker.port), timeout=5):
        pass
    assert decided(worker.check()) and worker.alive()
