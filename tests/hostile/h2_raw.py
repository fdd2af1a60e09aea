"""Attacks on the native front end with raw HTTP/2 frames, and the worker they are sent to.

`Worker` is tests/hostile/h2_worker.py in a process of its own (its RSS is read from
/proc); `RawPeer` is a socket that sends exactly the frames a test writes and reads back
what the server answers; `legitimate_check` is Envoy's call (a real CheckRequest over
grpcio) on a connection of its own."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from authz_server.h2grpc.frames import PREFACE, ErrorCode, Flag, FrameType, Setting, frame, settings_frame, window_update
from authz_server.h2grpc.grpc_wire import encode_headers
from portcullis_shared.settings import REPO_ROOT

CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check"
REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", CHECK_PATH), (":authority", "authz"),
           ("content-type", "application/grpc"), ("te", "trailers")]
SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0)
ENVOY_WINDOW = 256 * 1024 * 1024   # Envoy's default stream and connection windows


def check_message() -> bytes:
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    http.method, http.path, http.host = "GET", "/shop/1.0/menu", "gateway"
    payload = request.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def headers_frame(stream_id: int, headers: list[tuple[str, str]] = REQUEST, *, end_stream: bool = False,
                  end_headers: bool = True) -> bytes:
    flags = (Flag.END_STREAM if end_stream else 0) | (Flag.END_HEADERS if end_headers else 0)
    return frame(FrameType.HEADERS, flags, stream_id, encode_headers(headers))


def rst(stream_id: int, code: ErrorCode = ErrorCode.CANCEL) -> bytes:
    return frame(FrameType.RST_STREAM, 0, stream_id, struct.pack(">I", code))


def ping(data: bytes = b"12345678") -> bytes:
    return frame(FrameType.PING, 0, 0, data)


@dataclass
class Received:
    """What the server sent a RawPeer, parsed into frames."""

    frames: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    closed: bool = False

    def of_type(self, frame_type: FrameType) -> list[tuple[int, int, int, bytes]]:
        return [each for each in self.frames if each[0] == frame_type]

    @property
    def goaway(self) -> tuple[int, ErrorCode, bytes] | None:
        """(last stream id, error code, debug data) of the last GOAWAY."""
        goaways = self.of_type(FrameType.GOAWAY)
        if not goaways:
            return None
        payload = goaways[-1][3]
        last, code = struct.unpack_from(">II", payload)
        return last & 0x7FFF_FFFF, ErrorCode(code), payload[8:]

    def resets(self) -> dict[int, ErrorCode]:
        return {stream_id: ErrorCode(struct.unpack(">I", payload)[0])
                for _, _, stream_id, payload in self.of_type(FrameType.RST_STREAM)}

    def answered(self, stream_id: int) -> bool:
        """The stream's answer ended (trailers or a trailers-only HEADERS with END_STREAM)."""
        return any(t == FrameType.HEADERS and s == stream_id and f & Flag.END_STREAM for t, f, s, _ in self.frames)


class RawPeer:
    """One TCP connection that speaks HTTP/2 only as the test writes it; a thread reads all
    the server sends, so that a server that closes never loses its GOAWAY to a full buffer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.received = Received()
        self._bytes = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            with self._lock:
                if not chunk:
                    self.received.closed = True
                    return
                self._bytes += chunk
                while len(self._bytes) >= 9:
                    length = int.from_bytes(self._bytes[:3], "big")
                    if len(self._bytes) < 9 + length:
                        break
                    head, payload = self._bytes[:9], self._bytes[9:9 + length]
                    self._bytes = self._bytes[9 + length:]
                    self.received.frames.append((head[3], head[4], int.from_bytes(head[5:9], "big"), payload))

    def send(self, *frames: bytes) -> bool:
        """False once the server has closed (the rest of an attack is then moot)."""
        try:
            self.sock.sendall(b"".join(frames))
            return True
        except OSError:
            return False

    def flood(self, frames: Iterable[bytes], *, batch: int = 500) -> int:
        """Send until `frames` run out or the server closes; the number of frames sent."""
        sent, pending = 0, []
        for each in frames:
            pending.append(each)
            if len(pending) >= batch:
                if not self.send(*pending):
                    return sent
                sent += len(pending)
                pending = []
        if pending and self.send(*pending):
            sent += len(pending)
        return sent

    def handshake(self, *, acknowledge: bool = True) -> None:
        """Client preface and SETTINGS with Envoy's large windows (never topped up: the answers
        of a test fit them), then (once it arrives) the ACK of the server's SETTINGS."""
        self.send(PREFACE + settings_frame({Setting.INITIAL_WINDOW_SIZE: ENVOY_WINDOW})
                  + window_update(0, ENVOY_WINDOW - 65_535))
        if acknowledge:
            self.wait(lambda received: bool(received.of_type(FrameType.SETTINGS)))
            self.send(SETTINGS_ACK)

    def wait(self, condition: Callable[[Received], bool], timeout: float = 20.0) -> Received:
        """Until `condition` holds of what arrived (or the server closed, or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if condition(self.received) or self.received.closed:
                    break
            time.sleep(0.01)
        with self._lock:
            return Received(list(self.received.frames), self.received.closed)

    def wait_closed(self, timeout: float = 20.0) -> Received:
        return self.wait(lambda received: received.closed, timeout)

    def close(self) -> None:
        # shutdown wakes the reader's blocked recv at once; close alone leaves it blocked
        # until the 5 s join timeout (5 s added to every test of this kind).
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the server has closed already
        try:
            self.sock.close()
        finally:
            self._reader.join(timeout=5)


class Worker:
    """tests/hostile/h2_worker.py in its own process, with `env` on top of the test's."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        environment = {**os.environ, "PORTCULLIS_AUTHZ_THREADS": "2", **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "tests.hostile.h2_worker"], cwd=REPO_ROOT,
                                        env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise RuntimeError(f"the worker did not start: {line!r}")
        self.port = int(line)
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def peer(self) -> RawPeer:
        return RawPeer(self.port)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def check(self, timeout: float = 20.0) -> external_auth_pb2.CheckResponse:
        """Envoy's call, on the worker's one grpcio connection (not the attacker's)."""
        request = external_auth_pb2.CheckRequest.FromString(check_message()[5:])
        return external_auth_pb2_grpc.AuthorizationStub(self._channel).Check(request, timeout=timeout)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self._channel.close()
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process.stdout.close()


def answers_while(worker: Worker, attack: Callable[[], object], *, calls: int = 5) -> list[external_auth_pb2.CheckResponse]:
    """Run `attack` on a thread; meanwhile, and after it, Check on another connection.
    Returns every answer (each a denial of the empty store's: a real decision)."""
    worker.check()   # the legitimate connection is up before the attack starts
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            attack()
        except BaseException as exc:   # noqa: BLE001 - reported by the test's thread
            failure.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    answers = []
    while not done.is_set() or len(answers) < calls:
        answers.append(worker.check())
        if len(answers) > 10_000:
            break
    thread.join(timeout=60)
    if failure:
        raise failure[0]
    answers.append(worker.check())
    return answers


def decided(response: external_auth_pb2.CheckResponse) -> bool:
    """A real decision came back: the empty store denies with its reason code."""
    headers = {h.header.key: h.header.value for h in response.denied_response.headers}
    return bool(headers.get("x-portcullis-reason")) and response.status.message == headers["x-portcullis-reason"]
