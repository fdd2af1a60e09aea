"""Renders envoy/envoy.yaml.tmpl for a MeshSettings into the data directory."""

from __future__ import annotations

from pathlib import Path
from string import Template

from portcullis_shared.settings import REPO_ROOT, MeshSettings

TEMPLATE_PATH = REPO_ROOT / "envoy" / "envoy.yaml.tmpl"
RENDERED_NAME = "envoy.yaml"
# How long Envoy waits for a decision before it counts as an error (and so a denial).
DEFAULT_AUTHZ_TIMEOUT_SECONDS = 1.5  # above authz_server's own 1 s budget for JWKS and introspection calls


def template_values(settings: MeshSettings, *, authz_timeout_seconds: float) -> dict[str, str]:
    return {
        "HOST": settings.host,
        "GATEWAY_PORT": str(settings.gateway_port),
        "ENVOY_ADMIN_PORT": str(settings.envoy_admin_port),
        "AUTHZ_PORT": str(settings.authz_port),
        "BACKEND_PRODUCTION_PORT": str(settings.backend_production_port),
        "BACKEND_SANDBOX_PORT": str(settings.backend_sandbox_port),
        "AUTHZ_TIMEOUT": f"{authz_timeout_seconds:g}s",
    }


def render(settings: MeshSettings, *, authz_timeout_seconds: float = DEFAULT_AUTHZ_TIMEOUT_SECONDS) -> str:
    """The Envoy configuration text. A placeholder without a value is a KeyError, never
    a silently empty field."""
    template = Template(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return template.substitute(template_values(settings, authz_timeout_seconds=authz_timeout_seconds))


def write(settings: MeshSettings, *, authz_timeout_seconds: float = DEFAULT_AUTHZ_TIMEOUT_SECONDS) -> Path:
    """Renders into `<data dir>/envoy.yaml` and returns that path."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / RENDERED_NAME
    path.write_text(render(settings, authz_timeout_seconds=authz_timeout_seconds), encoding="utf-8")
    return path
