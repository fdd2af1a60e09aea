"""The replica side of PolicySync.Watch: keep the PolicyStore converged with admin_api.

One thread. It connects with the sync token, asks for changes after the last revision it
applied, assembles a snapshot (SnapshotBegin, chunks, SnapshotEnd) and applies it whole
at SnapshotEnd, then applies each upsert and delete in revision order. Replays (at or
below the applied revision) are ignored; a gap or a protocol error drops the stream and
resumes from the last applied revision. While admin_api is away the store keeps the last
state, so decisions continue; reconnects back off exponentially with jitter.

A lost admin_api does not always break the TCP connection (a host gone silent, a
half-open connection through a NAT): admin_api sends a heartbeat when it has nothing else
to say, so a stream silent for `Liveness.idle_timeout` (three heartbeats) is cancelled and
resumed. HTTP/2 keepalive pings catch a dead transport even while events are stalled
behind flow control; admin_api's gRPC server permits them (admin_api/transports/grpc/server.py).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import grpc
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc

from authz_server.index.policy_index import PolicyIndex
from authz_server.index.store import PolicyStore, RevisionGap
from portcullis_shared.config import declaration
from portcullis_shared.settings import MeshSettings

log = logging.getLogger(__name__)


class SyncProtocolError(Exception):
    """The stream broke the Watch protocol; the client reconnects."""


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.2
    maximum: float = 10.0
    multiplier: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Equal jitter: half the capped exponential delay, plus up to that half again."""
        ceiling = min(self.maximum, self.initial * self.multiplier ** max(attempt, 0))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


# Keepalive pings on the channel to admin_api. admin_api's server accepts a ping every
# 10 s (admin_api.transports.grpc.server.SERVER_OPTIONS); pinging more often than that would earn
# strikes and a GOAWAY too_many_pings.
KEEPALIVE_TIME_MS = 20_000
KEEPALIVE_TIMEOUT_MS = 10_000
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    # A Watch stream can idle between heartbeats: keep pinging without data frames.
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
)


@dataclass(frozen=True)
class Liveness:
    """How long a Watch stream may stay silent before the replica gives up on it."""

    # PORTCULLIS_SYNC_HEARTBEAT_SECONDS, as admin_api sends them
    heartbeat_interval: float = declaration(MeshSettings, "sync_heartbeat_seconds").default
    missed_heartbeats: int = 3

    @property
    def idle_timeout(self) -> float:
        return self.heartbeat_interval * self.missed_heartbeats


class _Watchdog:
    """Cancels a call that stays silent too long. Only time spent waiting for the next
    event counts: applying a large snapshot is this replica's own work, not silence."""

    def __init__(self, call: grpc.Future, timeout: float) -> None:
        self._call = call
        self._timeout = timeout
        self._condition = threading.Condition()
        self._deadline: float | None = time.monotonic() + timeout
        self._done = False
        self.fired = False
        self._thread = threading.Thread(target=self._run, name="policy-sync-watchdog", daemon=True)
        self._thread.start()

    def waiting(self) -> None:
        with self._condition:
            self._deadline = time.monotonic() + self._timeout
            self._condition.notify()

    def working(self) -> None:
        with self._condition:
            self._deadline = None

    def close(self) -> None:
        with self._condition:
            self._done = True
            self._condition.notify()
        self._thread.join()

    def _run(self) -> None:
        with self._condition:
            while not self._done:
                if self._deadline is None:
                    self._condition.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                self.fired = True
                break
        if self.fired:
            self._call.cancel()


def token_source(token: str | None, token_file: Path) -> Callable[[], str | None]:
    """The sync token from the environment, else read from the file on each connect
    (None while the file does not exist yet: admin_api writes it on its first start)."""

    def read() -> str | None:
        if token:
            return token
        try:
            return token_file.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    return read


class _SnapshotBuffer:
    """A snapshot being received: compiled chunk by chunk into an index that is swapped in
    whole at SnapshotEnd. Holding a million protobuf entities until the end instead would
    double the replica's peak memory (and its RSS after, which the allocator keeps)."""

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self.index = PolicyIndex.builder()


class PolicySyncClient:
    def __init__(
        self,
        store: PolicyStore,
        target: str | Sequence[str],
        token: Callable[[], str | None],
        *,
        backoff: Backoff = Backoff(),
        liveness: Liveness = Liveness(),
        replica: str | None = None,
        rng: random.Random | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """`target`: one admin_api address, or several (replicas on one database): the
        stream follows one and, when it ends or cannot be opened, resumes on the next from
        the last applied revision (a resume, not a snapshot: every replica serves the
        same change log). `credentials`: TLS to admin_api (verifying its certificate);
        None: plaintext."""
        targets = [target] if isinstance(target, str) else list(target)
        if not targets or not all(targets):
            raise ValueError("no admin_api address to watch")
        self._credentials = credentials
        self._store = store
        self._targets = targets
        self._target_index = 0
        self._token = token
        self._backoff = backoff
        self._liveness = liveness
        self._replica = replica or f"authz-server@{socket.gethostname()}:{os.getpid()}"
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._call: grpc.Future | None = None
        self._thread: threading.Thread | None = None
        self.connections = 0  # streams opened, for logs and tests
        self.events_received = 0
        self.silent_streams = 0  # streams dropped for silence, for logs and tests
        self.snapshots = 0  # snapshots installed (a resume on another replica installs none)
        self.connected = False  # a stream is open
        # For the metrics and the staleness check: when admin_api was last heard from (any
        # event, heartbeats included; monotonic) and how long the last snapshot took.
        self.last_heard = time.monotonic()
        self.snapshot_seconds = 0.0
        self._snapshot_started = 0.0

    @property
    def _target(self) -> str:
        """The admin_api address the current (or next) stream uses."""
        return self._targets[self._target_index]

    @property
    def target(self) -> str:
        return self._target

    def staleness_seconds(self) -> float:
        """Seconds since the last Watch event or heartbeat (since start before any)."""
        return max(0.0, time.monotonic() - self.last_heard)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.last_heard = time.monotonic()
        self._thread = threading.Thread(target=self.run, name="policy-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        attempt = 0
        waiting_logged = False
        while not self._stopping.is_set():
            token = self._token()
            if token is None:
                if not waiting_logged:
                    log.info("waiting for the sync token (PORTCULLIS_SYNC_TOKEN or the sync token file)")
                    waiting_logged = True
            else:
                received = self.events_received
                try:
                    self._watch(token)
                except grpc.RpcError as exc:
                    if not self._stopping.is_set():
                        code = exc.code() if isinstance(exc, grpc.Call) else None
                        level = logging.ERROR if code == grpc.StatusCode.UNAUTHENTICATED else logging.WARNING
                        log.log(level, "policy sync to %s lost: %s; keeping revision %d",
                                self._target, code.name if code else exc, self._store.revision)
                except (RevisionGap, SyncProtocolError) as exc:
                    log.warning("policy sync restarting from revision %d: %s", self._store.revision, exc)
                except Exception:
                    log.exception("policy sync failed; keeping revision %d", self._store.revision)
                if self.events_received != received:
                    attempt = 0  # the stream worked for a while: start the back-off afresh
                if len(self._targets) > 1 and not self._stopping.is_set():
                    # That replica went away or refused: the next one, from the same revision.
                    self._target_index = (self._target_index + 1) % len(self._targets)
                    log.info("policy sync failing over to %s from revision %d", self._target, self._store.revision)
            if self._stopping.wait(self._backoff.delay(attempt, self._rng)):
                break
            attempt += 1

    # --- one stream --------------------------------------------------------------------

    def _channel(self) -> grpc.Channel:
        if self._credentials is None:
            return grpc.insecure_channel(self._target, options=CHANNEL_OPTIONS)
        return grpc.secure_channel(self._target, self._credentials, options=CHANNEL_OPTIONS)

    def _watch(self, token: str) -> None:
        """Follow one Watch stream until it ends or breaks."""
        with self._channel() as channel:
            stub = sync_pb2_grpc.PolicySyncStub(channel)
            request = sync_pb2.WatchRequest(from_revision=self._store.revision, replica=self._replica)
            call = stub.Watch(request, metadata=(("authorization", f"Bearer {token}"),))
            with self._lock:
                if self._stopping.is_set():
                    call.cancel()
                    return
                self._call = call
            self.connections += 1
            self.connected = True
            log.info("policy sync connected to %s from revision %d", self._target, request.from_revision)
            watchdog = _Watchdog(call, self._liveness.idle_timeout)
            try:
                snapshot: _SnapshotBuffer | None = None
                for event in call:
                    watchdog.working()
                    self.last_heard = time.monotonic()
                    self.events_received += 1
                    snapshot = self._handle(event, snapshot)
                    watchdog.waiting()
                if not self._stopping.is_set():
                    log.warning("policy sync stream ended by %s", self._target)
            except grpc.RpcError:
                if not watchdog.fired:
                    raise
                self.silent_streams += 1
                log.warning("policy sync to %s silent for %.1f s; reconnecting from revision %d",
                            self._target, self._liveness.idle_timeout, self._store.revision)
            finally:
                watchdog.close()
                self.connected = False
                with self._lock:
                    self._call = None
                call.cancel()

    def _handle(self, event: sync_pb2.WatchEvent, snapshot: _SnapshotBuffer | None) -> _SnapshotBuffer | None:
        kind = event.WhichOneof("event")
        if kind == "heartbeat":
            return snapshot
        if kind == "snapshot_begin":
            if snapshot is not None:
                raise SyncProtocolError("SnapshotBegin inside a snapshot")
            self._snapshot_started = time.monotonic()
            return _SnapshotBuffer(event.revision)
        if kind in ("snapshot_chunk", "snapshot_end"):
            if snapshot is None or event.revision != snapshot.revision:
                raise SyncProtocolError(f"{kind} without a matching SnapshotBegin")
            if kind == "snapshot_chunk":
                for entity in event.snapshot_chunk.entities:
                    snapshot.index.upsert(entity)
                return snapshot
            self._store.install_snapshot(snapshot.index.finish(snapshot.revision))
            self.snapshot_seconds = time.monotonic() - self._snapshot_started
            self.snapshots += 1
            log.info("policy sync installed a snapshot at revision %d from %s (%.2f s)", snapshot.revision,
                     self._target, self.snapshot_seconds)
            return None
        if snapshot is not None:
            raise SyncProtocolError(f"{kind} inside a snapshot")
        if not self._store.ready:
            raise SyncProtocolError(f"{kind} before any snapshot")
        if kind == "upsert":
            self._store.apply_upsert(event.upsert, event.revision)
        elif kind == "delete":
            self._store.apply_delete(event.delete, event.revision)
        else:
            log.warning("unknown Watch event %r ignored", kind)
        return None
