"""Try it: one call through the gateway from the portal's server, with the credential
the user pasted, answered as status, reason code (the gateway's `x-portcullis-reason`)
and the start of the body.

Only the gateway is ever called: the URL is the gateway's, the API's base path and a
sub-path checked here (no scheme, host, dot segment or control character can reach it).
The call leaves from the portal's host, so an API key's IP restriction is checked
against that address, not the browser's.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass

import httpx

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_BODY_SHOWN = 4096
MAX_PATH = 512
TIMEOUT_SECONDS = 10.0
_PATH_RE = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*(\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?")
REASON_HEADER = "x-portcullis-reason"
BEARER = "bearer"
API_KEY = "api_key"


class BadTryRequest(ValueError):
    """The form cannot become a call; the message names the field."""


@dataclass(frozen=True)
class TryResult:
    method: str
    url: str
    status: int
    reason: str            # "" when the gateway gave none (an allowed call)
    content_type: str
    body: str              # at most MAX_BODY_SHOWN characters
    truncated: bool


def check_path(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > MAX_PATH or not _PATH_RE.fullmatch(path):
        raise BadTryRequest("path: a path under the API's base path, e.g. /menu (letters, digits and URL punctuation)")
    segments = path.split("?", 1)[0].split("/")
    if any(segment.split(";", 1)[0].lower() in {".", "..", "%2e", "%2e%2e", ".%2e", "%2e."} for segment in segments):
        raise BadTryRequest("path: no '.' or '..' segments")
    return path


def build_headers(kind: str, credential: str, api_key_header: str) -> dict[str, str]:
    if not credential:
        return {}
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in credential) or len(credential) > 8192:
        raise BadTryRequest("credential: printable ASCII without spaces")
    if kind == BEARER:
        return {"Authorization": f"Bearer {credential}"}
    if kind == API_KEY:
        return {api_key_header or "apikey": credential}
    raise BadTryRequest("credential kind: a bearer token or an API key")


async def call_gateway(gateway_url: str, base_path: str, method: str, path: str, headers: dict[str, str], *,
                       verify: ssl.SSLContext | bool = True) -> TryResult:
    if method not in METHODS:
        raise BadTryRequest(f"method: one of {', '.join(METHODS)}")
    url = gateway_url.rstrip("/") + base_path + check_path(path)
    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, trust_env=False, follow_redirects=False,
                                 verify=verify) as client:
        try:
            response = await client.request(method, url, headers=headers)
        except httpx.HTTPError as exc:
            return TryResult(method, url, 0, "gateway_unreachable", "", f"The gateway did not answer: "
                             f"{type(exc).__name__}", False)
    text = response.text
    return TryResult(method=method, url=url, status=response.status_code,
                     reason=response.headers.get(REASON_HEADER, ""),
                     content_type=response.headers.get("content-type", ""),
                     body=text[:MAX_BODY_SHOWN], truncated=len(text) > MAX_BODY_SHOWN)
