"""Ports and paths of the local mesh, each overridable by an environment variable.

Read once at start-up (never per request) and passed down as a frozen value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting from the environment is malformed."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} must be true or false")


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < 0:
        raise SettingsError(f"{name}={value} must be 0 or more")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise SettingsError(f"{name}={raw} must be a positive number")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise SettingsError(f"{name}={port} is outside 1..65535")
    return port


@dataclass(frozen=True)
class MeshSettings:
    """Where every process of the local mesh listens (all on 127.0.0.1)."""

    host: str = "127.0.0.1"
    gateway_port: int = 8080            # Envoy listener: API traffic
    envoy_admin_port: int = 9901        # Envoy admin, loopback only
    admin_rest_port: int = 8081         # admin_api REST/JSON and /openapi.json
    admin_grpc_port: int = 9090         # admin_api gRPC (admin services and PolicySync.Watch)
    authz_port: int = 9191              # authz_server ext_authz gRPC
    authz_metrics_port: int = 9464      # authz_server Prometheus /metrics (all its workers)
    backend_production_port: int = 8091
    backend_sandbox_port: int = 8092
    data_dir: Path = REPO_ROOT / "var"  # SQLite file, credential files, rendered Envoy config
    # Application keys may hold several consumer secrets (rotation); 0: no maximum per key.
    multiple_consumer_secrets: bool = False
    max_consumer_secrets: int = 0
    # admin_api sends a Watch heartbeat after this long without another event; a replica
    # that hears nothing for three of them drops the stream and reconnects.
    sync_heartbeat_seconds: float = 5.0
    # Change-log rows older than this are pruned (the newest is always kept); a replica
    # further behind gets a snapshot.
    change_log_retention_hours: float = 168.0

    @property
    def database_url(self) -> str:
        return os.environ.get("PORTCULLIS_DATABASE_URL") or f"sqlite:///{self.data_dir / 'portcullis.db'}"

    @property
    def public_url(self) -> str:
        """Where admin_api's REST port is reached by clients: the resident key manager's
        issuer, and the base of its OAuth2 endpoints (/oauth2/token, /oauth2/jwks, ...)."""
        configured = os.environ.get("PORTCULLIS_PUBLIC_URL", "").rstrip("/")
        return configured or f"http://{self.host}:{self.admin_rest_port}"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def sync_token_file(self) -> Path:
        return self.data_dir / "sync-token"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "MeshSettings":
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            gateway_port=_port(env, "PORTCULLIS_GATEWAY_PORT", defaults.gateway_port),
            envoy_admin_port=_port(env, "PORTCULLIS_ENVOY_ADMIN_PORT", defaults.envoy_admin_port),
            admin_rest_port=_port(env, "PORTCULLIS_ADMIN_REST_PORT", defaults.admin_rest_port),
            admin_grpc_port=_port(env, "PORTCULLIS_ADMIN_GRPC_PORT", defaults.admin_grpc_port),
            authz_port=_port(env, "PORTCULLIS_AUTHZ_PORT", defaults.authz_port),
            authz_metrics_port=_port(env, "PORTCULLIS_AUTHZ_METRICS_PORT", defaults.authz_metrics_port),
            backend_production_port=_port(env, "PORTCULLIS_BACKEND_PRODUCTION_PORT", defaults.backend_production_port),
            backend_sandbox_port=_port(env, "PORTCULLIS_BACKEND_SANDBOX_PORT", defaults.backend_sandbox_port),
            data_dir=Path(env.get("PORTCULLIS_DATA_DIR") or defaults.data_dir).resolve(),
            multiple_consumer_secrets=_flag(env, "PORTCULLIS_MULTIPLE_CONSUMER_SECRETS",
                                            defaults.multiple_consumer_secrets),
            max_consumer_secrets=_count(env, "PORTCULLIS_MAX_CONSUMER_SECRETS", defaults.max_consumer_secrets),
            sync_heartbeat_seconds=_seconds(env, "PORTCULLIS_SYNC_HEARTBEAT_SECONDS", defaults.sync_heartbeat_seconds),
            change_log_retention_hours=_seconds(env, "PORTCULLIS_CHANGE_LOG_RETENTION_HOURS",
                                                defaults.change_log_retention_hours),
        )

    def as_env(self) -> dict[str, str]:
        """The environment that makes a child process see these same settings."""
        names = {
            "gateway_port": "PORTCULLIS_GATEWAY_PORT",
            "envoy_admin_port": "PORTCULLIS_ENVOY_ADMIN_PORT",
            "admin_rest_port": "PORTCULLIS_ADMIN_REST_PORT",
            "admin_grpc_port": "PORTCULLIS_ADMIN_GRPC_PORT",
            "authz_port": "PORTCULLIS_AUTHZ_PORT",
            "authz_metrics_port": "PORTCULLIS_AUTHZ_METRICS_PORT",
            "backend_production_port": "PORTCULLIS_BACKEND_PRODUCTION_PORT",
            "backend_sandbox_port": "PORTCULLIS_BACKEND_SANDBOX_PORT",
            "data_dir": "PORTCULLIS_DATA_DIR",
            "max_consumer_secrets": "PORTCULLIS_MAX_CONSUMER_SECRETS",
            "sync_heartbeat_seconds": "PORTCULLIS_SYNC_HEARTBEAT_SECONDS",
            "change_log_retention_hours": "PORTCULLIS_CHANGE_LOG_RETENTION_HOURS",
        }
        env = {env_name: str(getattr(self, field)) for field, env_name in names.items()}
        env["PORTCULLIS_MULTIPLE_CONSUMER_SECRETS"] = "true" if self.multiple_consumer_secrets else "false"
        return env


