"""Renders envoy/envoy.yaml.tmpl (Envoy's bootstrap) for a MeshSettings into the data
directory. It carries the gateway credential, so it is written with mode 0600. With TLS
on, the SDS files of its TLS secrets go beside it (mesh.envoy_tls)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from string import Template
from typing import Sequence

from authz_server.settings import worker_ports, worker_socket_paths
from mesh import envoy_tls
from portcullis_shared.private_files import private_directory
from portcullis_shared.settings import REPO_ROOT, MeshSettings

TEMPLATE_PATH = REPO_ROOT / "envoy" / "envoy.yaml.tmpl"
RENDERED_NAME = "envoy.yaml"
ENVOY_ADMIN_HOST = "127.0.0.1"
DEFAULT_NODE_ID = "portcullis-gateway"
# How long Envoy waits for a decision before it counts as an error (and so a denial).
DEFAULT_AUTHZ_TIMEOUT_SECONDS = 1.5  # above authz_server's own 1 s budget for JWKS and introspection calls


def lb_endpoints(host: str, ports: list[int]) -> str:
    """One lb_endpoint per port, as a YAML flow sequence (one line)."""
    return "[" + ", ".join(
        f"{{endpoint: {{address: {{socket_address: {{address: {host}, port_value: {port}}}}}}}}}" for port in ports
    ) + "]"


authz_endpoints = lb_endpoints   # one per authz_server worker


def pipe_endpoints(paths: list[Path]) -> str:
    """One lb_endpoint per Unix socket (Envoy's `pipe` address), as a YAML flow sequence."""
    return "[" + ", ".join(f"{{endpoint: {{address: {{pipe: {{path: {json.dumps(str(path))}}}}}}}}}" for path in paths) + "]"


def authz_cluster(settings: MeshSettings, authz_workers: int,
                  authz_ports: Sequence[int] | None = None) -> tuple[str, str]:
    """The ext_authz cluster's endpoints and transport socket: each worker's Unix socket in
    plaintext when PORTCULLIS_AUTHZ_UNIX_SOCKET is set (same host: the socket's mode decides
    who connects), else each worker's TCP port, with mTLS under PORTCULLIS_TLS. `authz_ports`:
    these TCP ports instead (a fleet gives each Envoy its own share of replicas, mesh.fleet)."""
    if authz_ports is None and settings.authz_unix_socket is not None:
        return pipe_endpoints(worker_socket_paths(settings.authz_unix_socket, authz_workers)), ""
    ports = list(authz_ports) if authz_ports is not None else worker_ports(settings.authz_port, authz_workers)
    return authz_endpoints(settings.host, ports), envoy_tls.authz_socket(settings.tls_files, settings.host,
                                                                          sds_directory(settings))


def xds_endpoints(settings: MeshSettings) -> str:
    """One lb_endpoint per admin_api replica (its gRPC port)."""
    return lb_endpoints(settings.host, [settings.admin_grpc_port + index for index in range(settings.admin_replicas)])


def sds_directory(settings: MeshSettings) -> Path:
    """Where the SDS files of Envoy's TLS secrets go (mesh.envoy_tls)."""
    return settings.data_dir / envoy_tls.SDS_DIR_NAME


def template_values(settings: MeshSettings, *, authz_timeout_seconds: float, authz_workers: int = 1,
                    node_id: str = DEFAULT_NODE_ID, gateway_token: str,
                    authz_ports: Sequence[int] | None = None) -> dict[str, str]:
    """`authz_ports`: the ext_authz cluster's endpoints (default: the mesh's authz_server,
    one per worker from `settings.authz_port`); a fleet gives each Envoy its own share."""
    if not gateway_token or any(c in gateway_token for c in "\"\\\n"):
        raise ValueError("the gateway token is empty or not a plain token")
    tls, sds = settings.tls_files, sds_directory(settings)
    endpoints, authz_socket = authz_cluster(settings, authz_workers, authz_ports)
    return {
        "NODE_ID": node_id,
        "BIND_HOST": settings.bind_host,
        "GATEWAY_TRANSPORT_SOCKET": envoy_tls.gateway_socket(tls, sds),
        "AUTHZ_TRANSPORT_SOCKET": authz_socket,
        "XDS_TRANSPORT_SOCKET": envoy_tls.xds_socket(tls, settings.host, sds),
        "GATEWAY_TOKEN": gateway_token,
        "XDS_ENDPOINTS": xds_endpoints(settings),
        "AUTHZ_ENDPOINTS": endpoints,
        "HOST": settings.host,
        "GATEWAY_PORT": str(settings.gateway_port),
        # Envoy's admin answers /config_dump (routes, clusters) and /quitquitquit to whoever
        # reaches it, without a credential: loopback always, whatever the other hosts are.
        "ENVOY_ADMIN_HOST": ENVOY_ADMIN_HOST,
        "ENVOY_ADMIN_PORT": str(settings.envoy_admin_port),
        "AUTHZ_PORT": str(settings.authz_port),
        "AUTHZ_TIMEOUT": f"{authz_timeout_seconds:g}s",
    }


def read_gateway_token(settings: MeshSettings) -> str:
    """The token admin_api wrote on its first start (OSError when it has not yet)."""
    return settings.gateway_token_file.read_text(encoding="utf-8").strip()


def render(settings: MeshSettings, *, authz_timeout_seconds: float = DEFAULT_AUTHZ_TIMEOUT_SECONDS,
           authz_workers: int = 1, node_id: str = DEFAULT_NODE_ID, gateway_token: str | None = None,
           template_path: Path = TEMPLATE_PATH, authz_ports: Sequence[int] | None = None) -> str:
    """The Envoy configuration text. A placeholder without a value is a KeyError, never
    a silently empty field."""
    template = Template(template_path.read_text(encoding="utf-8"))
    token = read_gateway_token(settings) if gateway_token is None else gateway_token
    return template.substitute(template_values(settings, authz_timeout_seconds=authz_timeout_seconds,
                                               authz_workers=authz_workers, node_id=node_id, gateway_token=token,
                                               authz_ports=authz_ports))


def write(settings: MeshSettings, *, authz_timeout_seconds: float = DEFAULT_AUTHZ_TIMEOUT_SECONDS,
          authz_workers: int = 1, node_id: str = DEFAULT_NODE_ID, gateway_token: str | None = None,
          name: str = RENDERED_NAME, authz_ports: Sequence[int] | None = None) -> Path:
    """Renders into `<data dir>/envoy.yaml` (mode 0600), with the SDS files its TLS
    contexts read (mesh.envoy_tls), and returns that path."""
    private_directory(settings.data_dir)
    envoy_tls.write_secrets(settings.tls_files, sds_directory(settings))
    path = settings.data_dir / name
    text = render(settings, authz_timeout_seconds=authz_timeout_seconds, authz_workers=authz_workers,
                  node_id=node_id, gateway_token=gateway_token, authz_ports=authz_ports)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    return path
