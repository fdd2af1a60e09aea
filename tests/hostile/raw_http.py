"""HTTP requests with the request target sent byte for byte (httpx would normalise
`..` and `%2e` before Envoy ever saw them), and Envoy access-log lookups."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]   # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def reason_code(self) -> str | None:
        try:
            body = self.json()
        except ValueError:
            return None
        return body.get("code") if isinstance(body, dict) else None

    @property
    def reached_backend(self) -> bool:
        return "x-backend-environment" in self.headers


def raw_get(host: str, port: int, target: str, headers: dict[str, str] | None = None, *,
            tls: ssl.SSLContext | None = None) -> RawResponse:
    """`tls`: over TLS with this (verifying) client context, as to a mesh on TLS."""
    connection = (http.client.HTTPConnection(host, port, timeout=10) if tls is None
                  else http.client.HTTPSConnection(host, port, timeout=10, context=tls))
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def access_log_entries(log: Path) -> list[dict[str, Any]]:
    entries = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries
