"""The admin REST API over HTTP: one call per Operation, problems raised as RequestRefused.

The CLI talks to nothing else (no database, no gRPC), so it works against any
deployment that the caller can reach with a token.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from portcullis_cli.schema import Operation

TIMEOUT_SECONDS = 30.0


class CliError(Exception):
    """A failure the CLI reports on stderr and answers with exit code 1."""


class RequestRefused(CliError):
    """The server answered an error (an RFC 9457 problem document, or at least a status)."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.status} {self.code}: {self.detail}{where}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> RequestRefused:
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            text = response.text.strip()[:200] or response.reason_phrase
            return cls(response.status_code, "http_error", text)
        return cls(response.status_code, str(problem.get("code") or problem.get("error") or "http_error"),
                   str(problem.get("detail") or problem.get("error_description") or problem.get("title") or ""),
                   problem.get("field"))


class ServerUnreachable(CliError):
    pass


def unreachable(url: str, exc: httpx.HTTPError, *, what: str = "") -> ServerUnreachable:
    """ServerUnreachable for `url` (`what` names it), with what to do when TLS is the reason."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        hint = ("its TLS certificate is not trusted: name the CA that issued it with --ca-file, "
                "PORTCULLIS_TLS_CA_FILE or the profile's ca-file")
    elif "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        hint = "it does not speak TLS there: use http://, or the port that serves https"
    elif url.startswith("http://") and isinstance(exc, httpx.RemoteProtocolError):
        hint = "it closed the connection: if it serves TLS (PORTCULLIS_TLS=on or auto), use https://"
    else:
        hint = text
    return ServerUnreachable(f"cannot reach {what}{url}: {hint}")


def fill_path(template: str, values: dict[str, str]) -> str:
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    return path


class AdminClient:
    """A bearer-authenticated httpx client on the admin REST base URL.

    `token` is a callable so that a login token can be refreshed between calls."""

    def __init__(self, server: str, token: Callable[[], str | None], *,
                 transport: httpx.BaseTransport | None = None, verify: ssl.SSLContext | bool = True) -> None:
        self.server = server.rstrip("/")
        self._token = token
        self._http = httpx.Client(base_url=self.server, timeout=TIMEOUT_SECONDS, trust_env=False,
                                  transport=transport, verify=verify)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        token = self._token()
        return {"authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, params=params, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise unreachable(self.server, exc, what="the admin API at ") from exc
        if response.status_code >= 400:
            raise RequestRefused.from_response(response)
        if not response.content:
            return None
        return response.json()

    def call(self, operation: Operation, path_values: dict[str, str], *, params: dict[str, Any] | None = None,
             body: dict[str, Any] | None = None) -> Any:
        return self.request(operation.http_method, fill_path(operation.path, path_values), params=params,
                            body=body if operation.body else None)

    def list_all(self, operation: Operation, path_values: dict[str, str],
                 params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list operation, following next_page_token."""
        field = operation.list_field
        assert field is not None, f"{operation.full_name} is not a list"
        query = dict(params or {})
        while True:
            answer = self.call(operation, path_values, params=query) or {}
            yield from answer.get(field.name, [])
            token = answer.get("next_page_token") if operation.pages else None
            if not token:
                return
            query["page_token"] = token
