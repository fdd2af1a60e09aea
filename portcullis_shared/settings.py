"""The deployment's shared settings: where each process of the mesh listens, the data
directory and database, and admin_api's own settings. Read once at start-up (never per
request) and passed down as a frozen value.

HOW TO ADD A SETTING (here, or in authz_server/settings.py for authz_server's own):
  1. add a field `name: type = setting("PORTCULLIS_...", parser, default, "what it does")`
     to the group it belongs to (parsers and `shown=` are in portcullis_shared/config.py);
     the doc string is the README's "meaning" cell, word for word;
  2. add the same row to the README's "Ports and settings" tables (a port goes to the
     ports table): `pytest tests/test_settings.py` fails and prints the row until you do;
  3. read it from the frozen settings value you are handed, never from os.environ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from portcullis_shared.config import (REPO_ROOT, SettingsError, SettingsGroup, as_env, flag, group, path, port,
                                      positive, setting, text, url, whole)
from portcullis_shared.tls import TlsFiles, TlsSettings

__all__ = ["REPO_ROOT", "MeshSettings", "SettingsError"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class MeshSettings(SettingsGroup):
    """Where every process of the local mesh listens (all on 127.0.0.1), and what they share."""

    host: str = HOST
    gateway_port: int = setting("PORTCULLIS_GATEWAY_PORT", port, 8080, "Envoy gateway (API traffic)")
    envoy_admin_port: int = setting("PORTCULLIS_ENVOY_ADMIN_PORT", port, 9901, "Envoy admin")
    admin_rest_port: int = setting("PORTCULLIS_ADMIN_REST_PORT", port, 8081,
                                   "admin_api REST (`/openapi.json`, `/healthz`, `/livez`, `/metrics`)")
    admin_grpc_port: int = setting("PORTCULLIS_ADMIN_GRPC_PORT", port, 9090,
                                   "admin_api gRPC (admin services, `PolicySync`)")
    authz_port: int = setting("PORTCULLIS_AUTHZ_PORT", port, 9191,
                              "authz_server gRPC (`ext_authz`, health; reflection with "
                              "`PORTCULLIS_AUTHZ_FRONTEND=grpcio`)")
    authz_unix_socket: Path | None = setting(
        "PORTCULLIS_AUTHZ_UNIX_SOCKET", path, None,
        "native front end: also listen on this Unix socket (h2c), and Envoy's `authz` cluster dials it (a `pipe` "
        "address) instead of TCP: for an Envoy on the same host. With several workers, worker `i` listens on "
        "`<stem>-<i><suffix>` (`authz.sock` → `authz-0.sock`, ...). The TCP port stays (explain, probes). See "
        "[Envoy to authz_server over a Unix socket](#envoy-to-authz_server-over-a-unix-socket)",
        shown="unset (TCP)")
    authz_metrics_port: int = setting("PORTCULLIS_AUTHZ_METRICS_PORT", port, 9464,
                                      "authz_server Prometheus `/metrics` (all its workers in one target)")
    backend_production_port: int = setting("PORTCULLIS_BACKEND_PRODUCTION_PORT", port, 8091,
                                           "sample backend, production")
    backend_sandbox_port: int = setting("PORTCULLIS_BACKEND_SANDBOX_PORT", port, 8092, "sample backend, sandbox")
    data_dir: Path = setting("PORTCULLIS_DATA_DIR", path, REPO_ROOT / "var",
                             "SQLite file, credential files, rendered Envoy config")
    admin_replicas: int = setting(
        "PORTCULLIS_ADMIN_REPLICAS", whole(minimum=1), 1,
        "admin_api replicas the mesh starts; replica `i` listens on the admin REST and gRPC ports plus `i`, "
        "Envoy and authz_server are given every replica. More than one needs `PORTCULLIS_DATABASE_URL` on "
        "PostgreSQL (see [Scaling out](#scaling-out))")
    # "": the SQLite file in data_dir (see `database_url`).
    database_url_override: str = setting("PORTCULLIS_DATABASE_URL", text, "", "any SQLAlchemy URL",
                                         shown="`sqlite:///var/portcullis.db`")
    change_log_retention_hours: float = setting(
        "PORTCULLIS_CHANGE_LOG_RETENTION_HOURS", positive(), 168.0,
        "admin_api prunes change-log rows older than this (checked every 10 minutes; the newest row always "
        "stays); a replica further behind gets a snapshot on its next `Watch`", shown="`168` (7 days)")
    sync_heartbeat_seconds: float = setting(
        "PORTCULLIS_SYNC_HEARTBEAT_SECONDS", positive(), 5.0,
        "admin_api sends a `Watch` heartbeat after this long without another event; authz_server drops a "
        "stream silent for three of them and resumes from its last revision (it keeps deciding meanwhile). "
        "Set the same value on both")
    # "": admin_api's REST port on loopback (see `public_url`).
    public_url_override: str = setting(
        "PORTCULLIS_PUBLIC_URL", url, "",
        "the resident key manager's issuer and the base of its endpoints (https unless on loopback)",
        shown="`http://127.0.0.1:$PORTCULLIS_ADMIN_REST_PORT` (`https://` with `PORTCULLIS_TLS`)")
    # "": worker 0 of the authz_server on loopback (see `authz_explain_target`).
    authz_explain_target_override: str = setting(
        "PORTCULLIS_AUTHZ_EXPLAIN_TARGET", text, "",
        "the authz_server replica admin_api asks to run `POST /v1/decisions:explain` (gRPC `host:port`)",
        shown="`127.0.0.1:$PORTCULLIS_AUTHZ_PORT`")
    kek: str = setting("PORTCULLIS_KEK", text, "",
                       "key-encryption key (base64url of 32 bytes) for signing keys and key-manager secrets "
                       "at rest: back it up", shown="read from `PORTCULLIS_KEK_FILE`", secret=True)
    kek_file: Path | None = setting("PORTCULLIS_KEK_FILE", path, None,
                                    "a file holding the key-encryption key, read when `PORTCULLIS_KEK` is unset",
                                    shown="`var/kek`, made on first start (0600)")
    upstream_trust_store: str = setting(
        "PORTCULLIS_UPSTREAM_TRUST_STORE", text, "/etc/ssl/certs/ca-certificates.crt",
        "the PEM file (on the Envoy host) Envoy checks `https` API endpoints against when the API brings no "
        "CA bundle of its own")
    authorization_code_seconds: float = setting(
        "PORTCULLIS_AUTHORIZATION_CODE_SECONDS", positive(maximum=600), 300.0,
        "how long an authorization code of the resident key manager can be exchanged (RFC 6749 §4.1.2 "
        "recommends at most 10 minutes)")
    login_max_failures: int = setting(
        "PORTCULLIS_LOGIN_MAX_FAILURES", whole(minimum=1), 5,
        "failed logins in a row (a user's password, a client's secret at the resident key manager) before that "
        "account or client is locked out")
    login_lockout_seconds: float = setting(
        "PORTCULLIS_LOGIN_LOCKOUT_SECONDS", positive(maximum=3600), 60.0,
        "the first lockout; each further one doubles it, at most an hour, until a login succeeds")
    multiple_consumer_secrets: bool = setting("PORTCULLIS_MULTIPLE_CONSUMER_SECRETS", flag, False,
                                              "allow several consumer secrets per application key")
    max_consumer_secrets: int = setting("PORTCULLIS_MAX_CONSUMER_SECRETS", whole(), 0,
                                        "the most consumer secrets an application key may have",
                                        shown="`0` (no maximum)")
    tls: TlsSettings = group(TlsSettings)

    @property
    def database_url(self) -> str:
        return self.database_url_override or f"sqlite:///{self.data_dir / 'portcullis.db'}"

    def admin_replica(self, index: int) -> "MeshSettings":
        """The settings admin_api replica `index` runs with: its own REST and gRPC ports
        (the base ports plus `index`), everything else shared, the resident key manager's
        issuer included (replica 0's URL unless PORTCULLIS_PUBLIC_URL names another)."""
        if not 0 <= index < self.admin_replicas:
            raise ValueError(f"no admin_api replica {index} (PORTCULLIS_ADMIN_REPLICAS={self.admin_replicas})")
        if index == 0:
            return self
        return replace(self, admin_rest_port=self.admin_rest_port + index, admin_grpc_port=self.admin_grpc_port + index,
                       public_url_override=self.public_url)

    @property
    def admin_grpc_targets(self) -> list[str]:
        """Every admin_api replica's gRPC address (`host:port`), replica 0 first."""
        return [f"{self.host}:{self.admin_grpc_port + index}" for index in range(self.admin_replicas)]

    @property
    def public_url(self) -> str:
        """Where admin_api's REST port is reached by clients: the resident key manager's
        issuer, and the base of its OAuth2 endpoints (/oauth2/token, /oauth2/jwks, ...)."""
        return self.public_url_override or f"{self.rest_scheme}://{self.host}:{self.admin_rest_port}"

    @property
    def rest_scheme(self) -> str:
        """`https` when admin_api's REST port serves TLS."""
        return "https" if self.tls.enabled else "http"

    @property
    def bind_host(self) -> str:
        """Where admin_api, authz_server and Envoy's gateway listen (see PORTCULLIS_BIND_HOST)."""
        return self.tls.bind_host

    @property
    def tls_files(self) -> TlsFiles | None:
        """The certificate files in force, None with TLS off."""
        return self.tls.files(self.data_dir)

    @property
    def authz_explain_target(self) -> str:
        return self.authz_explain_target_override or f"{self.host}:{self.authz_port}"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def sync_token_file(self) -> Path:
        return self.data_dir / "sync-token"

    @property
    def gateway_token_file(self) -> Path:
        """Envoy's credential for the xDS stream (the mesh renders it into Envoy's bootstrap)."""
        return self.data_dir / "gateway-token"

    def as_env(self) -> dict[str, str]:
        """The environment that makes a child process see these same settings."""
        return as_env(self)
