"""`portcullis login`: a user token from the resident key manager (or any OAuth2 server
that publishes `/.well-known/openid-configuration` at the admin server).

Two ways: the password grant, and the authorization code with PKCE (S256) through the
user's browser, answered on a loopback redirect (`http://127.0.0.1:<port>/callback`,
RFC 8252 §7.3) that this process serves for exactly one request.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import ssl
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from portcullis_cli.client import CliError, RequestRefused, unreachable
from portcullis_cli.config import LoginCredentials
from portcullis_shared.scopes import ADMIN_SCOPE

# What an https server is checked against (Connection.verify: the CA file, or the public CAs).
Verify = ssl.SSLContext | bool

CALLBACK_PATH = "/callback"
BROWSER_TIMEOUT_SECONDS = 300.0


class LoginFailed(CliError):
    pass


@dataclass(frozen=True)
class Endpoints:
    token: str
    authorization: str | None


def discover(server: str, verify: Verify = True) -> Endpoints:
    url = server.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=10.0, trust_env=False, verify=verify)
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc
    if response.status_code != 200:
        raise RequestRefused.from_response(response)
    metadata = response.json()
    return Endpoints(token=metadata["token_endpoint"], authorization=metadata.get("authorization_endpoint"))


def _token_request(endpoint: str, form: dict[str, str], client_id: str, client_secret: str | None,
                   verify: Verify = True) -> dict[str, Any]:
    auth = (client_id, client_secret) if client_secret else None
    if not client_secret:
        form = {**form, "client_id": client_id}  # a public client names itself in the body
    try:
        response = httpx.post(endpoint, data=form, auth=auth, timeout=10.0, trust_env=False, verify=verify)
    except httpx.HTTPError as exc:
        raise unreachable(endpoint, exc) from exc
    if response.status_code != 200:
        raise RequestRefused.from_response(response)
    return response.json()


def _credentials(answer: dict[str, Any], endpoint: str, client_id: str, public: bool) -> LoginCredentials:
    # A refresh token is kept only for public clients: refreshing a confidential client's
    # token would need its secret, which the CLI never stores.
    if ADMIN_SCOPE not in str(answer.get("scope", ADMIN_SCOPE)).split():
        raise LoginFailed(f"the token has no {ADMIN_SCOPE} scope, so the admin API would refuse it: "
                          f"client {client_id!r} is not first-party (an admin sets settings.first_party "
                          "on its application key)")
    return LoginCredentials(access_token=answer["access_token"],
                            expires_at=time.time() + float(answer.get("expires_in") or 3600),
                            token_endpoint=endpoint, client_id=client_id,
                            refresh_token=answer.get("refresh_token") if public else None)


def password_login(server: str, *, client_id: str, client_secret: str | None, username: str, password: str,
                   scope: str | None, verify: Verify = True) -> LoginCredentials:
    endpoints = discover(server, verify)
    form = {"grant_type": "password", "username": username, "password": password}
    if scope:
        form["scope"] = scope
    answer = _token_request(endpoints.token, form, client_id, client_secret, verify)
    return _credentials(answer, endpoints.token, client_id, public=not client_secret)


def token_answer(server: str, *, client_id: str, client_secret: str | None, form: dict[str, str],
                 scope: str | None, verify: Verify = True) -> dict[str, Any]:
    """One token request at the discovered token endpoint (`portcullis token`)."""
    if scope:
        form = {**form, "scope": scope}
    return _token_request(discover(server, verify).token, form, client_id, client_secret, verify)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class _Callback:
    """One loopback request with the authorization answer (or an error)."""

    def __init__(self, port: int) -> None:
        self.params: dict[str, str] | None = None
        self.arrived = threading.Event()
        callback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                if url.path != CALLBACK_PATH or callback.arrived.is_set():
                    self.send_error(404)
                    return
                callback.params = {k: v[0] for k, v in parse_qs(url.query).items()}
                body = b"<!doctype html><title>Portcullis</title><p>Signed in: you may close this window.</p>"
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                callback.arrived.set()

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_port}{CALLBACK_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def browser_login(server: str, *, client_id: str, client_secret: str | None, scope: str | None, port: int,
                  open_browser: bool, announce: Callable[[str], None],
                  timeout: float = BROWSER_TIMEOUT_SECONDS, verify: Verify = True) -> LoginCredentials:
    endpoints = discover(server, verify)
    if not endpoints.authorization:
        raise LoginFailed("the server publishes no authorization endpoint")
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(16)
    callback = _Callback(port)
    try:
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": callback.redirect_uri,
                 "state": state, "code_challenge": _s256(verifier), "code_challenge_method": "S256"}
        if scope:
            query["scope"] = scope
        url = f"{endpoints.authorization}?{urlencode(query)}"
        announce(url)
        if open_browser:
            webbrowser.open(url)
        if not callback.arrived.wait(timeout):
            raise LoginFailed(f"no answer on {callback.redirect_uri} within {timeout:.0f} s")
    finally:
        callback.close()
    params = callback.params or {}
    if params.get("state") != state:
        raise LoginFailed("the authorization answer carries the wrong state: ignored")
    if "error" in params:
        raise LoginFailed(f"authorization refused: {params['error']} {params.get('error_description', '')}".strip())
    if "code" not in params:
        raise LoginFailed("the authorization answer carries no code")
    answer = _token_request(endpoints.token, {"grant_type": "authorization_code", "code": params["code"],
                                              "redirect_uri": callback.redirect_uri, "code_verifier": verifier},
                            client_id, client_secret, verify)
    return _credentials(answer, endpoints.token, client_id, public=not client_secret)


def refreshed(credentials: LoginCredentials, verify: Verify = True) -> LoginCredentials:
    if not credentials.refresh_token:
        raise LoginFailed("the saved login has expired: run `portcullis login` again")
    answer = _token_request(credentials.token_endpoint,
                            {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token},
                            credentials.client_id, None, verify)
    return _credentials(answer, credentials.token_endpoint, credentials.client_id, public=True)
