"""authz_server's settings: the mesh's plus its own environment variables, read once.

HOW TO ADD A SETTING: see the top of portcullis_shared/settings.py (declare it once here
with `setting(...)`, add its README row; tests/test_settings.py holds the two together).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from authz_server.h2grpc.event_loop import EVENT_LOOPS
from authz_server.h2grpc.unix_listener import SOCKET_MODES, UnixSocketError, check_path_length
from portcullis_shared.config import SettingsError, SettingsGroup, choice, declaration, group, positive, printable, setting, switch, text, whole
from portcullis_shared.settings import MeshSettings

FRONTENDS = ("native", "grpcio")
DECISION_LOG_MODES = ("all", "denials", "off")


def default_workers() -> int:
    """One worker process per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class TokenSettings(SettingsGroup):
    """OAuth2 token validation: JWKS and introspection caches."""

    jwks_refresh_seconds: float = setting("PORTCULLIS_JWKS_REFRESH_SECONDS", positive(), 300.0,
                                          "authz_server refreshes each key manager's JWKS this often")
    jwks_min_refresh_seconds: float = setting("PORTCULLIS_JWKS_MIN_REFRESH_SECONDS", positive(), 10.0,
                                              "at most one refresh for an unknown `kid` per JWKS in this time")
    jwks_timeout_seconds: float = setting("PORTCULLIS_JWKS_TIMEOUT_SECONDS", positive(maximum=30.0), 1.0,
                                          "bound on a JWKS fetch (Envoy's ext_authz timeout is 1.5 s)")
    introspection_timeout_seconds: float = setting(
        "PORTCULLIS_INTROSPECTION_TIMEOUT_SECONDS", positive(maximum=30.0), 1.0,
        "bound on an introspection call (Envoy's ext_authz timeout is 1.5 s)")
    introspection_cache_seconds: float = setting(
        "PORTCULLIS_INTROSPECTION_CACHE_SECONDS", positive(), 60.0,
        "an active introspection answer is cached until the token expires or this long")
    introspection_negative_cache_seconds: float = setting(
        "PORTCULLIS_INTROSPECTION_NEGATIVE_CACHE_SECONDS", positive(), 10.0,
        "an inactive answer is cached this long (failures never are)")
    token_cache_size: int = setting("PORTCULLIS_TOKEN_CACHE_SIZE", whole(minimum=1), 10_000,
                                    "introspection answers each authz_server worker keeps")
    jwks_cache_size: int = setting("PORTCULLIS_JWKS_CACHE_SIZE", whole(minimum=1), 1_000,
                                   "key managers' JWKS each authz_server worker keeps")
    max_introspection_candidates: int = setting("PORTCULLIS_MAX_INTROSPECTION_CANDIDATES", whole(minimum=1), 3,
                                                "pattern-less key managers an opaque token may be sent to")
    verified_token_cache_size: int = setting(
        "PORTCULLIS_VERIFIED_TOKEN_CACHE_SIZE", whole(), 10_000,
        "JWTs (by SHA-256) whose signature was verified, kept until `exp`; `0` turns it off. Key manager, "
        "key, expiry, revocation, client, subscription and scope are still checked on every request")


@dataclass(frozen=True)
class BackendJwtSettings(SettingsGroup):
    issuer: str = setting("PORTCULLIS_BACKEND_JWT_ISSUER", printable(max_length=2000), "portcullis",
                          "the `iss` of backend JWTs (see [Backend JWT](#backend-jwt))")
    cache_size: int = setting("PORTCULLIS_BACKEND_JWT_CACHE_SIZE", whole(minimum=1), 10_000,
                              "signed backend JWTs each authz_server worker keeps for reuse")


@dataclass(frozen=True)
class H2Settings(SettingsGroup):
    """The native front end's bounds on what one HTTP/2 peer may make a worker hold or do
    (see [The native front end against abuse](#the-native-front-end-against-abuse))."""

    max_connections: int = setting(
        "PORTCULLIS_AUTHZ_H2_MAX_CONNECTIONS", whole(minimum=1), 1000,
        "native: connections one worker holds at once; the next is refused at once (GOAWAY `ENHANCE_YOUR_CALM`). "
        "Envoy opens one per Envoy worker thread and authz_server worker")
    max_header_block_bytes: int = setting(
        "PORTCULLIS_AUTHZ_H2_MAX_HEADER_BLOCK_BYTES", whole(minimum=1024), 65_536,
        "native: bytes of one header block (HEADERS and its CONTINUATION frames), also announced as "
        "`SETTINGS_MAX_HEADER_LIST_SIZE`")
    max_header_block_frames: int = setting(
        "PORTCULLIS_AUTHZ_H2_MAX_HEADER_BLOCK_FRAMES", whole(minimum=2), 32,
        "native: frames of one header block, empty CONTINUATION frames included (CONTINUATION floods)")
    max_early_resets: int = setting(
        "PORTCULLIS_AUTHZ_H2_MAX_EARLY_RESETS", whole(minimum=1), 200,
        "native: streams of a connection ended before their answer (reset by the client, malformed, refused); "
        "past this many, when they are more than half of its recent streams, the connection ends (rapid reset)")
    max_control_frames: int = setting(
        "PORTCULLIS_AUTHZ_H2_MAX_CONTROL_FRAMES", whole(minimum=10), 1000,
        "native: frames that carry no call (PING, SETTINGS, WINDOW_UPDATE, PRIORITY, empty DATA, RST_STREAM or "
        "DATA of a closed stream, unknown types) a connection may send within a second with no call opened")
    max_worker_held_bytes: int = setting(
        "PORTCULLIS_AUTHZ_H2_MAX_WORKER_HELD_BYTES", whole(minimum=1024 * 1024), 64 * 1024 * 1024,
        "native: bytes all connections of one worker hold together (unfinished request bodies and header blocks, "
        "answers held back by flow control); past it the connection holding the most is ended (GOAWAY "
        "`ENHANCE_YOUR_CALM`) and its new streams meanwhile refused (`REFUSED_STREAM`). Each connection also holds "
        "at most 16 MiB")
    preface_timeout_seconds: float = setting(
        "PORTCULLIS_AUTHZ_H2_PREFACE_TIMEOUT_SECONDS", positive(), 10.0,
        "native: a new connection's client preface and first SETTINGS must arrive within this")
    settings_timeout_seconds: float = setting(
        "PORTCULLIS_AUTHZ_H2_SETTINGS_TIMEOUT_SECONDS", positive(), 10.0,
        "native: the client must acknowledge our SETTINGS within this (else GOAWAY `SETTINGS_TIMEOUT`)")
    request_timeout_seconds: float = setting(
        "PORTCULLIS_AUTHZ_H2_REQUEST_TIMEOUT_SECONDS", positive(), 10.0,
        "native: a call's header block and message must arrive, and its answer be let out by flow control, within "
        "this: an unfinished header block ends the connection, the rest the stream (`RST_STREAM CANCEL`)")
    idle_timeout_seconds: float = setting(
        "PORTCULLIS_AUTHZ_H2_IDLE_TIMEOUT_SECONDS", positive(), 300.0,
        "native: a connection without any call for this long is closed gracefully (GOAWAY `NO_ERROR` twice, "
        "RFC 9113 §6.8; PINGs do not count as calls)")


THROTTLE_FAILURE_MODES = ("open", "closed")
# Set by the supervisor for its workers: the counter table they share.
THROTTLE_TABLE_VARIABLE = "PORTCULLIS_THROTTLE_TABLE"


@dataclass(frozen=True)
class ThrottleSettings(SettingsGroup):
    """Throttling: where the counters live (this authz_server, or Redis for every replica)."""

    redis_url: str | None = setting(
        "PORTCULLIS_REDIS_URL", text, None,
        "`redis://host:port/db` (or `rediss://`, `unix://`): throttling counters shared by every authz_server "
        "replica through Redis (see [Throttling](#throttling)); unset: each authz_server counts for itself, "
        "exactly across its workers", shown="unset", secret=True)
    failure_mode: str = setting(
        "PORTCULLIS_THROTTLE_FAILURE_MODE", choice(*THROTTLE_FAILURE_MODES), "open",
        "Redis away or slow: `open` counts locally (each replica admits up to the limit on its own) until it is "
        "back; `closed` spends the quota already leased, then refuses with `throttling_unavailable`")
    redis_timeout_seconds: float = setting(
        "PORTCULLIS_REDIS_TIMEOUT_SECONDS", positive(maximum=5.0), 0.25,
        "bound on a Redis round trip (only calls without a lease wait on one, on a thread, never the event loop)")
    counters: int = setting(
        "PORTCULLIS_THROTTLE_COUNTERS", whole(minimum=64), 131_072,
        "slots of the counter table the workers share (64 bytes each, in /dev/shm); one per counter with calls in "
        "its current window")
    headers_on_allow: bool = setting(
        "PORTCULLIS_THROTTLE_HEADERS_ON_ALLOW", switch, True,
        "`RateLimit-Policy` and `RateLimit` fields on allowed calls too (refused calls always have them)")
    table_path: str | None = setting(
        THROTTLE_TABLE_VARIABLE, text, None,
        "set by authz_server's supervisor for its workers (the counter table file they share); not for users",
        shown="unset")

    def __post_init__(self) -> None:
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("PORTCULLIS_REDIS_URL must be a redis://, rediss:// or unix:// URL")


@dataclass(frozen=True)
class AuthzSettings(SettingsGroup):
    mesh: MeshSettings = group(MeshSettings)
    # "": admin_api's gRPC port on loopback (see `admin_grpc_target`).
    admin_grpc_target_override: str = setting(
        "PORTCULLIS_ADMIN_GRPC_TARGET", text, "",
        "where authz_server watches: `host:port`, or several admin_api replicas separated by commas (the "
        "`Watch` fails over to the next, resuming from its revision)",
        shown="`127.0.0.1:$PORTCULLIS_ADMIN_GRPC_PORT`")
    # None: read from the sync token file on each connect.
    sync_token: str | None = setting("PORTCULLIS_SYNC_TOKEN", text, None, "authz_server's credential for `Watch`",
                                     shown="contents of `var/sync-token`", secret=True)
    trusted_hops: int = setting("PORTCULLIS_TRUSTED_HOPS", whole(), 0,
                                "how many proxies in front of Envoy may be trusted in `X-Forwarded-For`")
    # One gRPC server per worker process: Python runs one thread at a time per process.
    workers: int = setting(
        "PORTCULLIS_AUTHZ_WORKERS", whole(minimum=1), doc=(
            "authz_server worker processes; worker `i` listens on `PORTCULLIS_AUTHZ_PORT + i` (consecutive "
            "ports), each with its own `Watch`, index and caches; Envoy gets one endpoint per worker"),
        default_factory=default_workers, shown="the cores")
    frontend: str = setting(
        "PORTCULLIS_AUTHZ_FRONTEND", choice(*FRONTENDS), "native",
        "`native`: authz_server's own gRPC server for unary calls over h2c (`Check`, "
        "`grpc.health.v1.Health/Check`), ~4× less CPU per call; `grpcio`: grpcio's server, which adds server "
        "reflection (`grpcurl`) and streaming `Health/Watch`")
    event_loop: str = setting(
        "PORTCULLIS_AUTHZ_EVENT_LOOP", choice(*EVENT_LOOPS), "uvloop",
        "native: the event loop of the front end's thread; `uvloop` (libuv, in C) spends less CPU per read and "
        "write than `asyncio`, the standard library's selector loop, with the same behaviour")
    threads: int = setting(
        "PORTCULLIS_AUTHZ_THREADS", whole(minimum=1), 4,
        "native: threads per worker for the decisions that wait on a key manager (JWKS fetch, introspection); "
        "grpcio: the whole thread pool (a decision holds the GIL: more threads only add switching)")
    max_concurrent_rpcs: int = setting(
        "PORTCULLIS_AUTHZ_MAX_CONCURRENT_RPCS", whole(minimum=1), 256,
        "native: streams per connection and decisions waiting on key managers per worker; grpcio: calls a "
        "worker accepts at once. Beyond, `RESOURCE_EXHAUSTED` (or a refused stream) at once — Envoy fails "
        "closed — instead of a queue longer than Envoy's 1.5 s timeout")
    unix_socket_mode: str = setting(
        "PORTCULLIS_AUTHZ_UNIX_SOCKET_MODE", choice(*SOCKET_MODES), "0600",
        "the mode of `PORTCULLIS_AUTHZ_UNIX_SOCKET`: `0600` (Envoy runs as authz_server's user; the directory is "
        "made 0700) or `0660` (Envoy in authz_server's group; the directory 0710)")
    decision_log: str = setting(
        "PORTCULLIS_DECISION_LOG", choice(*DECISION_LOG_MODES), "all",
        "which decisions authz_server logs, one line each: `all`, `denials` or `off` (Envoy's access log also "
        "carries every decision's reason, API, key and application)")
    # The port is the mesh's PORTCULLIS_AUTHZ_METRICS_PORT.
    metrics: bool = setting("PORTCULLIS_AUTHZ_METRICS", switch, True,
                            "`off`: authz_server counts nothing and serves no `/metrics` (the bench compares the two)")
    metrics_max_apis: int = setting(
        "PORTCULLIS_METRICS_MAX_APIS", whole(minimum=1), 200,
        "APIs that get their own `api` label in `portcullis_decisions_total`; the ones seen after that are counted "
        "under `api=\"_other\"` (see [Operating Portcullis](#operating-portcullis))")
    usage_report_seconds: float = setting(
        "PORTCULLIS_USAGE_REPORT_SECONDS", positive(maximum=3600.0), 15.0,
        "how often each authz_server process reports its calls per application and API to admin_api (the "
        "portal's usage figures, see [Usage per application](#usage-per-application))")
    max_staleness_seconds: float | None = setting(
        "PORTCULLIS_MAX_STALENESS_SECONDS", positive(), None,
        "past this long without a `Watch` event or heartbeat, an authz_server worker reports NOT_SERVING on gRPC "
        "health (Envoy then prefers a fresher replica) and logs it once; it keeps deciding from its last state "
        "(see [Health](#health)). More than `PORTCULLIS_SYNC_HEARTBEAT_SECONDS`", shown="off")
    tokens: TokenSettings = group(TokenSettings)
    backend_jwt: BackendJwtSettings = group(BackendJwtSettings)
    throttle: ThrottleSettings = group(ThrottleSettings)
    h2: H2Settings = group(H2Settings)

    def __post_init__(self) -> None:
        socket_path = self.mesh.authz_unix_socket
        if socket_path is not None:
            if self.frontend != "native":
                raise SettingsError("PORTCULLIS_AUTHZ_UNIX_SOCKET needs PORTCULLIS_AUTHZ_FRONTEND=native")
            for each in worker_socket_paths(socket_path, self.workers):
                try:
                    check_path_length(each)
                except UnixSocketError as exc:
                    raise SettingsError(str(exc)) from None
        if self.admin_grpc_target_override and not all(
                target.strip() for target in self.admin_grpc_target_override.split(",")):
            raise SettingsError("PORTCULLIS_ADMIN_GRPC_TARGET has an empty address (host:port, separated by commas)")
        heartbeat = self.mesh.sync_heartbeat_seconds
        if self.max_staleness_seconds is not None and self.max_staleness_seconds <= heartbeat:
            # A healthy replica hears from admin_api once per heartbeat: it would flap.
            raise SettingsError(f"PORTCULLIS_MAX_STALENESS_SECONDS={self.max_staleness_seconds:g} must be more than "
                                f"PORTCULLIS_SYNC_HEARTBEAT_SECONDS ({heartbeat:g})")

    @property
    def admin_grpc_target(self) -> str:
        """The first admin_api replica watched."""
        return self.admin_grpc_targets[0]

    @property
    def admin_grpc_targets(self) -> list[str]:
        """Every admin_api replica authz_server may watch, in the order it tries them."""
        if not self.admin_grpc_target_override:
            return [f"{self.mesh.host}:{self.mesh.admin_grpc_port}"]
        return [target.strip() for target in self.admin_grpc_target_override.split(",")]

    @property
    def listen_address(self) -> str:
        return f"{self.mesh.host}:{self.mesh.authz_port}"


def worker_count(env: Mapping[str, str]) -> int:
    """PORTCULLIS_AUTHZ_WORKERS as authz_server reads it; the mesh reads it too, to give
    Envoy one endpoint per worker."""
    return declaration(AuthzSettings, "workers").read(env)


def worker_ports(authz_port: int, workers: int) -> list[int]:
    return [authz_port + index for index in range(workers)]


def worker_socket_paths(path: Path, workers: int) -> list[Path]:
    """PORTCULLIS_AUTHZ_UNIX_SOCKET for each worker: the path itself for one process,
    `<stem>-<i><suffix>` for worker i of several (as worker i's port is authz_port + i)."""
    if workers == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{index}{path.suffix}") for index in range(workers)]
