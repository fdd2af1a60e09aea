"""The HTTP server: routes by the last path segments, so it answers under any base path.

- `GET <anything>/menu` -> the menu as a JSON list
- any method on `<anything>/echo` or below -> what the request looked like on arrival
- `/healthz` -> 200
- every response carries `x-backend-environment: production|sandbox`
- with a JWKS URL, a backend JWT header (default `x-jwt-assertion`) is verified and
  `/echo` answers the result under "backend_jwt" ({"verified", "kid", "claims"|"error"})

Malformed requests get a 4xx; an exception in a handler is logged and answered with 500;
neither stops the server.
"""

from __future__ import annotations

import json
import logging
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sample_backend.jwt_verifier import JwksVerifier
from sample_backend.menu import MENU

ENVIRONMENTS = ("production", "sandbox")
MAX_BODY_BYTES = 1024 * 1024
log = logging.getLogger("sample_backend")


class BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards Envoy; every answer has a length
    server_version = "PizzaShack/1.0"
    server: "BackendServer"

    # One method for every verb: the route depends on the path only, except /menu.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def version_string(self) -> str:
        return self.server_version

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
            parts = urlsplit(self.path)
            segments = _segments(parts.path)
            if parts.path == "/healthz":
                self._send_json(HTTPStatus.OK, {"status": "ok"})
            elif "echo" in segments:
                self._send_json(HTTPStatus.OK, self._echo(parts.path, parts.query, body))
            elif segments and segments[-1] == "menu":
                if self.command not in ("GET", "HEAD"):
                    self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "the menu is read-only"})
                else:
                    self._send_json(HTTPStatus.OK, list(MENU))
            elif len(segments) >= 2 and segments[-2] == "order" and self.command == "POST":
                self._send_json(HTTPStatus.CREATED, {"orderId": segments[-1], "status": "received"})
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {parts.path}"})
        except BadRequest as error:
            self.close_connection = True  # the body may be unread: do not reuse the stream
            self._send_json(error.status, {"error": error.message})
        except Exception:  # a bug here must not take the server down; say so and go on
            log.exception("unexpected error answering %s %s", self.command, self.path)
            self.close_connection = True
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def _echo(self, path: str, query: str, body: bytes) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return {
            "environment": self.server.environment,
            "method": self.command,
            "path": path,
            "query": parse_qs(query, keep_blank_values=True),
            "headers": headers,
            "body_bytes": len(body),
            **self._backend_jwt(headers),
        }

    def _backend_jwt(self, headers: dict[str, str]) -> dict[str, Any]:
        verifier = self.server.verifier
        token = headers.get(self.server.backend_jwt_header)
        if verifier is None or token is None:
            return {}
        return {"backend_jwt": verifier.verify(token).as_json()}

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        raw = self.headers.get("content-length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "content-length is not a number") from None
        if length < 0:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "content-length is negative")
        if length > MAX_BODY_BYTES:
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are limited to {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed chunk size") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, up to the blank line
                    pass
                return bytes(body)
            if size < 0 or len(body) + size > MAX_BODY_BYTES:
                raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are limited to {MAX_BODY_BYTES} bytes")
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after the chunk

    def _send_json(self, status: HTTPStatus, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-backend-environment", self.server.environment)
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Only the path, never the query string: it may hold an API key. A request whose
        # line did not parse has no path at all.
        path = urlsplit(getattr(self, "path", "")).path
        # Unparsed requests were logged by log_error; readiness probes would drown the rest.
        if path and path != "/healthz":
            log.info("%s %s -> %s", self.command, path, code)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        # The stdlib's messages quote the raw request line, which may hold an API key in
        # its query string: log the status only.
        code = args[0] if args and isinstance(args[0], int) else "-"
        log.warning("refused a malformed request from %s with %s", self.client_address[0], code)


class BackendServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], environment: str, *, verifier: JwksVerifier | None = None,
                 backend_jwt_header: str = "x-jwt-assertion") -> None:
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}, not {environment!r}")
        self.environment = environment
        self.verifier = verifier
        self.backend_jwt_header = backend_jwt_header.lower()
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A broken connection (client gone, reset) is routine; one line, no traceback.
        log.warning("connection from %s ended with %s", client_address[0], sys.exc_info()[1])
