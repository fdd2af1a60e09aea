"""Supervisor <-> worker: a socket pair per worker, one question, one answer per scrape.

The supervisor writes a 4-byte sequence number; the worker answers with the same number,
a 4-byte length and its snapshot as JSON. An answer to an earlier, timed-out question is
recognised by its number and skipped, so a slow worker can never answer for the next
scrape. The worker's end is inherited by the exec'ed worker (its fd number in
PORTCULLIS_METRICS_FD); nothing listens on a port or a path.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from typing import Callable

from authz_server.metrics.snapshot import Snapshot

log = logging.getLogger(__name__)

FD_VARIABLE = "PORTCULLIS_METRICS_FD"
_HEADER = struct.Struct(">II")     # sequence, length
_QUESTION = struct.Struct(">I")
MAX_ANSWER_BYTES = 64 * 1024 * 1024


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise ConnectionError("the other end closed the metrics channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class WorkerEnd:
    """In the worker: a daemon thread answering each question with `snapshot()`."""

    def __init__(self, sock: socket.socket, snapshot: Callable[[], Snapshot]) -> None:
        self._sock = sock
        self._snapshot = snapshot
        self._thread = threading.Thread(target=self._run, name="metrics-channel", daemon=True)

    @classmethod
    def from_fd(cls, fd: int, snapshot: Callable[[], Snapshot]) -> "WorkerEnd":
        return cls(socket.socket(fileno=fd), snapshot)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                (sequence,) = _QUESTION.unpack(_read_exactly(self._sock, _QUESTION.size))
                try:
                    body = json.dumps(self._snapshot(), separators=(",", ":")).encode()
                except Exception:   # an answer must always go back, or the supervisor waits for nothing
                    log.exception("metrics snapshot failed")
                    body = b"null"
                self._sock.sendall(_HEADER.pack(sequence, len(body)) + body)
        except (ConnectionError, OSError):
            pass   # the supervisor is gone: the worker notices that on its own
        finally:
            self._sock.close()


class SupervisorEnd:
    """In the supervisor: ask the worker for its snapshot, None when it does not answer in time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._sequence = 0

    @classmethod
    def pair(cls) -> tuple["SupervisorEnd", socket.socket]:
        """Our end, and the socket whose fd the worker inherits."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs.set_inheritable(True)
        return cls(ours), theirs

    def ask(self, timeout: float = 2.0) -> Snapshot | None:
        with self._lock:
            self._sequence = (self._sequence + 1) & 0xFFFFFFFF
            deadline = time.monotonic() + timeout
            try:
                self._sock.settimeout(timeout)
                self._sock.sendall(_QUESTION.pack(self._sequence))
                while True:
                    self._sock.settimeout(max(0.001, deadline - time.monotonic()))
                    sequence, length = _HEADER.unpack(_read_exactly(self._sock, _HEADER.size))
                    if length > MAX_ANSWER_BYTES:
                        raise ConnectionError(f"a metrics answer of {length} bytes")
                    body = _read_exactly(self._sock, length)
                    if sequence == self._sequence:
                        answer = json.loads(body)
                        return answer if isinstance(answer, dict) else None
            except (OSError, ConnectionError, ValueError):
                return None

    def close(self) -> None:
        self._sock.close()
