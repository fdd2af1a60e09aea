"""Renders envoy/envoy.yaml.tmpl for a MeshSettings into the data directory."""

from __future__ import annotations

from pathlib import Path
from string import Template

from authz_server.settings import worker_ports
from portcullis_shared.settings import REPO_ROOT, MeshSettings

TEMPLATE_PATH = REPO_ROOT / "envoy" / "envoy.yaml.tmpl"
RENDERED_NAME = "envoy.yaml"
# How long Envoy waits for a decision before it counts as an error (and so a denial).
DEFAULT_AUTHZ_TIMEOUT_SECONDS = 1.5  # above authz_server's own 1 s budget for JWKS and introspection calls


def authz_endpoints(host: str, ports: list[int]) -> str:
    """One lb_endpoint per authz_server worker, as a YAML flow sequence (one line)."""
    return "[" + ", ".join(
        f"{{endpoint: {{address: {{socket_address: {{address: {host}, port_value: {port}}}}}}}}}" for port in ports
    ) + "]"


def template_values(settings: MeshSettings, *, authz_timeout_seconds: float, authz_workers: int = 1) -> dict[str, str]:
    return {
        "AUTHZ_ENDPOINTS": authz_endpoints(settings.host, worker_ports(settings.authz_port, authz_workers)),
        "HOST": settings.host,
        "GATEWAY_PORT": str(settings.gateway_port),
        "ENVOY_ADMIN_PORT": str(settings.envoy_admin_port),
        "AUTHZ_PORT": str(settings.authz_port),
        "BACKEND_PRODUCTION_PORT": str(settings.backend_production_port),
        "BACKEND_SANDBOX_PORT": str(settings.backend_sandbox_port),
        "AUTHZ_TIMEOUT": f"{authz_timeout_seconds:g}s",
    }


def render(settings: MeshSettings, *, authz_timeout_seconds: float = DEFAULT_AUTHZ_TIMEOUT_SECONDS,
           authz_workers: int = 1, template_path: Path = TEMPLATE_PATH) -> str:
    """The Envoy configuration text. A placeholder without a value is a KeyError, never
    a silently empty field."""
    template = Template(template_path.read_text(encoding="utf-8"))
    return template.substitute(template_values(settings, authz_timeout_seconds=authz_timeout_seconds,
                                               authz_workers=authz_workers))


def write(settings: MeshSettings, *, authz_timeout_seconds: float = DEFAULT_AUTHZ_TIMEOUT_SECONDS,
          authz_workers: int = 1) -> Path:
    """Renders into `<data dir>/envoy.yaml` and returns that path."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / RENDERED_NAME
    path.write_text(render(settings, authz_timeout_seconds=authz_timeout_seconds, authz_workers=authz_workers),
                    encoding="utf-8")
    return path
