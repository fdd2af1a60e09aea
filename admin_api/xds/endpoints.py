"""An API endpoint URL read as Envoy needs it: where to connect, what to send as Host,
which path prefix replaces the API's base path, and whether to speak TLS."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class EndpointError(ValueError):
    """The stored endpoint cannot be deployed (admin_api validates endpoints first, so
    this means a record that predates that validation)."""


@dataclass(frozen=True)
class Upstream:
    scheme: str          # "http" or "https"
    host: str            # lower case; an IPv6 address without brackets
    port: int
    path_prefix: str     # "" or "/api" (never a trailing slash): replaces the base path
    host_header: str     # "svc:9999", or "svc" when the URL names no port
    is_ip: bool

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


def parse_endpoint(url: str) -> Upstream:
    """`http://svc:9999/api` → svc, 9999, "/api", Host "svc:9999". A query string on the
    endpoint is not sent (WSO2 drops it as well); the client's query always passes."""
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as exc:
        raise EndpointError(f"endpoint {url!r}: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise EndpointError(f"endpoint {url!r} is not an http(s) URL with a host")
    host = parts.hostname.lower()
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    shown_host = f"[{host}]" if ":" in host else host
    return Upstream(
        scheme=parts.scheme,
        host=host,
        port=explicit_port or DEFAULT_PORTS[parts.scheme],
        path_prefix=parts.path.rstrip("/"),
        host_header=shown_host if explicit_port is None else f"{shown_host}:{explicit_port}",
        is_ip=is_ip,
    )
