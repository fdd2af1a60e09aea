"""authz_server's settings: the mesh's plus its own environment variables, read once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from portcullis_shared.settings import MeshSettings, SettingsError


def _non_negative_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float, *, maximum: float | None = None) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise SettingsError(f"{name}={raw} must be a positive number of seconds")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}={raw} must be at most {maximum:g}")
    return value


@dataclass(frozen=True)
class TokenSettings:
    """OAuth2 token validation: JWKS and introspection caches (all read once at start)."""

    jwks_refresh_seconds: float = 300.0              # PORTCULLIS_JWKS_REFRESH_SECONDS
    jwks_min_refresh_seconds: float = 10.0           # PORTCULLIS_JWKS_MIN_REFRESH_SECONDS
    jwks_timeout_seconds: float = 1.0                # PORTCULLIS_JWKS_TIMEOUT_SECONDS
    introspection_timeout_seconds: float = 1.0       # PORTCULLIS_INTROSPECTION_TIMEOUT_SECONDS
    introspection_cache_seconds: float = 60.0        # PORTCULLIS_INTROSPECTION_CACHE_SECONDS
    introspection_negative_cache_seconds: float = 10.0   # PORTCULLIS_INTROSPECTION_NEGATIVE_CACHE_SECONDS
    token_cache_size: int = 10_000                   # PORTCULLIS_TOKEN_CACHE_SIZE
    jwks_cache_size: int = 1_000                     # PORTCULLIS_JWKS_CACHE_SIZE
    max_introspection_candidates: int = 3            # PORTCULLIS_MAX_INTROSPECTION_CANDIDATES
    verified_token_cache_size: int = 10_000          # PORTCULLIS_VERIFIED_TOKEN_CACHE_SIZE (0: off)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TokenSettings":
        return cls(
            jwks_refresh_seconds=_positive_float(env, "PORTCULLIS_JWKS_REFRESH_SECONDS", 300.0),
            jwks_min_refresh_seconds=_positive_float(env, "PORTCULLIS_JWKS_MIN_REFRESH_SECONDS", 10.0),
            jwks_timeout_seconds=_positive_float(env, "PORTCULLIS_JWKS_TIMEOUT_SECONDS", 1.0, maximum=30.0),
            introspection_timeout_seconds=_positive_float(
                env, "PORTCULLIS_INTROSPECTION_TIMEOUT_SECONDS", 1.0, maximum=30.0
            ),
            introspection_cache_seconds=_positive_float(env, "PORTCULLIS_INTROSPECTION_CACHE_SECONDS", 60.0),
            introspection_negative_cache_seconds=_positive_float(
                env, "PORTCULLIS_INTROSPECTION_NEGATIVE_CACHE_SECONDS", 10.0
            ),
            token_cache_size=_non_negative_int(env, "PORTCULLIS_TOKEN_CACHE_SIZE", 10_000, minimum=1),
            jwks_cache_size=_non_negative_int(env, "PORTCULLIS_JWKS_CACHE_SIZE", 1_000, minimum=1),
            max_introspection_candidates=_non_negative_int(env, "PORTCULLIS_MAX_INTROSPECTION_CANDIDATES", 3, minimum=1),
            verified_token_cache_size=_non_negative_int(env, "PORTCULLIS_VERIFIED_TOKEN_CACHE_SIZE", 10_000),
        )


FRONTENDS = ("native", "grpcio")
DECISION_LOG_MODES = ("all", "denials", "off")
METRICS_SWITCH = ("on", "off")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default), case-insensitive."""
    value = (env.get(name) or choices[0]).strip().lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def default_workers() -> int:
    """One worker process per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(env: Mapping[str, str]) -> int:
    """PORTCULLIS_AUTHZ_WORKERS (default: the cores); the mesh reads it too, to give Envoy
    one endpoint per worker."""
    return _non_negative_int(env, "PORTCULLIS_AUTHZ_WORKERS", default_workers(), minimum=1)


def worker_ports(authz_port: int, workers: int) -> list[int]:
    return [authz_port + index for index in range(workers)]


@dataclass(frozen=True)
class BackendJwtSettings:
    issuer: str = "portcullis"          # PORTCULLIS_BACKEND_JWT_ISSUER: the backend JWT's iss
    cache_size: int = 10_000            # PORTCULLIS_BACKEND_JWT_CACHE_SIZE: signed tokens kept for reuse

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "BackendJwtSettings":
        issuer = (env.get("PORTCULLIS_BACKEND_JWT_ISSUER") or "").strip() or "portcullis"
        if len(issuer) > 2000 or any(c < " " or c == "\x7f" for c in issuer):
            raise SettingsError("PORTCULLIS_BACKEND_JWT_ISSUER must be at most 2000 printable characters")
        return cls(issuer=issuer,
                   cache_size=_non_negative_int(env, "PORTCULLIS_BACKEND_JWT_CACHE_SIZE", 10_000, minimum=1))


@dataclass(frozen=True)
class AuthzSettings:
    mesh: MeshSettings
    admin_grpc_target: str          # PORTCULLIS_ADMIN_GRPC_TARGET
    sync_token: str | None          # PORTCULLIS_SYNC_TOKEN (else the sync token file)
    trusted_hops: int = 0           # PORTCULLIS_TRUSTED_HOPS
    # PORTCULLIS_AUTHZ_WORKERS: worker processes, one gRPC server each on consecutive ports
    # (authz_port, authz_port + 1, ...): Python runs one thread at a time per process.
    workers: int = 1
    # PORTCULLIS_AUTHZ_THREADS: per worker, the threads for calls that wait on a key manager
    # (native front end) or grpcio's whole thread pool (grpcio front end).
    threads: int = 4
    # PORTCULLIS_AUTHZ_FRONTEND: "native" (fast, unary Check and Health/Check) or "grpcio"
    # (grpcio's server: adds reflection and streaming health, costs ~4x the CPU per call).
    frontend: str = "native"
    decision_log: str = "all"       # PORTCULLIS_DECISION_LOG: all, denials or off
    # PORTCULLIS_AUTHZ_MAX_CONCURRENT_RPCS: beyond this, a worker answers RESOURCE_EXHAUSTED
    # at once (Envoy then fails closed) instead of queueing past Envoy's timeout.
    max_concurrent_rpcs: int = 256
    tokens: TokenSettings = TokenSettings()
    backend_jwt: BackendJwtSettings = BackendJwtSettings()
    # PORTCULLIS_AUTHZ_METRICS: on (default) or off (nothing counted, no /metrics: the
    # bench's comparison). The port is the mesh's PORTCULLIS_AUTHZ_METRICS_PORT.
    metrics: bool = True
    # PORTCULLIS_METRICS_MAX_APIS: APIs with their own `api` label; later ones count as _other.
    metrics_max_apis: int = 200

    @property
    def listen_address(self) -> str:
        return f"{self.mesh.host}:{self.mesh.authz_port}"

    def __repr__(self) -> str:  # never print the token
        return (
            f"AuthzSettings(listen={self.listen_address}, admin_grpc_target={self.admin_grpc_target}, "
            f"sync_token={'<set>' if self.sync_token else '<file ' + str(self.mesh.sync_token_file) + '>'}, "
            f"trusted_hops={self.trusted_hops}, workers={self.workers}, threads={self.threads}, frontend={self.frontend}, "
            f"decision_log={self.decision_log}, "
            f"max_concurrent_rpcs={self.max_concurrent_rpcs}, metrics={'on' if self.metrics else 'off'}, "
            f"metrics_max_apis={self.metrics_max_apis}, tokens={self.tokens}, backend_jwt={self.backend_jwt})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AuthzSettings":
        env = os.environ if env is None else env
        mesh = MeshSettings.from_env(env)
        return cls(
            mesh=mesh,
            admin_grpc_target=env.get("PORTCULLIS_ADMIN_GRPC_TARGET") or f"127.0.0.1:{mesh.admin_grpc_port}",
            sync_token=(env.get("PORTCULLIS_SYNC_TOKEN") or "").strip() or None,
            trusted_hops=_non_negative_int(env, "PORTCULLIS_TRUSTED_HOPS", 0),
            workers=worker_count(env),
            threads=_non_negative_int(env, "PORTCULLIS_AUTHZ_THREADS", 4, minimum=1),
            frontend=_choice(env, "PORTCULLIS_AUTHZ_FRONTEND", FRONTENDS),
            decision_log=_choice(env, "PORTCULLIS_DECISION_LOG", DECISION_LOG_MODES),
            max_concurrent_rpcs=_non_negative_int(env, "PORTCULLIS_AUTHZ_MAX_CONCURRENT_RPCS", 256, minimum=1),
            tokens=TokenSettings.from_env(env),
            backend_jwt=BackendJwtSettings.from_env(env),
            metrics=_choice(env, "PORTCULLIS_AUTHZ_METRICS", METRICS_SWITCH) == "on",
            metrics_max_apis=_non_negative_int(env, "PORTCULLIS_METRICS_MAX_APIS", 200, minimum=1),
        )
