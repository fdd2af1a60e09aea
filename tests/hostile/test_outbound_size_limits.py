"""A provider that answers admin_api's discovery or Dynamic Client Registration with an
endless or oversized body (issue 14): admin_api stops reading at its limit and says so.

Before, the whole body was read and measured after: an endless one held the call (and
its memory) until the provider stopped. The server below streams without end and counts
what it managed to send before admin_api hung up."""

from __future__ import annotations

import gzip
import socket
import threading
from typing import Iterator

import pytest

from admin_api.errors import FailedPrecondition
from admin_api.services import dcr, discovery

CHUNK = b" " * 65536


class FloodServer:
    """HTTP/1.1 on 127.0.0.1:0 answering every request 200 with the body `mode` says:
    "chunked" (endless chunks), "declared" (a Content-Length of 1 GiB, then bytes until
    the peer leaves) or "gzip" (a small body that inflates to 64 MiB)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sent = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536) or b"\r\n\r\n"
                self._flood(connection)
            except OSError:
                return  # the client hung up: what we want

    def _flood(self, connection: socket.socket) -> None:
        if self.mode == "gzip":
            body = gzip.compress(b"{" + b" " * (64 << 20) + b"}")
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
                               b"content-length: %d\r\n\r\n" % len(body) + body)
            self.sent += len(body)
            return
        if self.mode == "chunked":
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            frame = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
        else:
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                               % (1 << 30))
            frame = CHUNK
        while not self.stopping.is_set() and self.sent < (1 << 30):
            connection.sendall(frame)
            self.sent += len(frame)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture(params=["chunked", "declared", "gzip"])
def flood(request) -> Iterator[FloodServer]:
    server = FloodServer(request.param)
    yield server
    server.close()


def _bounded(server: FloodServer) -> None:
    # What was sent before admin_api hung up: the limit plus what loopback's socket
    # buffers absorbed, never the gigabyte on offer.
    assert server.sent < 64 << 20, server.sent


def test_a_discovery_document_is_read_no_further_than_its_limit(flood: FloodServer):
    with pytest.raises(FailedPrecondition) as refused:
        discovery.fetch(flood.url, expected_issuer="", timeout=30, field="key_manager.discovery_url")
    message = str(refused.value)
    assert "key_manager.discovery_url" in message
    assert f"larger than {discovery.MAX_DOCUMENT_BYTES} bytes" in message or "gzip-encoded" in message, message
    _bounded(flood)


def test_a_registration_answer_is_read_no_further_than_its_limit(flood: FloodServer):
    with pytest.raises(FailedPrecondition) as refused:
        dcr.register(flood.url + "/register", "initial-token", {"client_name": "x", "grant_types": ["client_credentials"]},
                     timeout=30)
    message = str(refused.value)
    assert f"larger than {dcr.MAX_RESPONSE_BYTES} bytes" in message or "gzip-encoded" in message, message
    _bounded(flood)
