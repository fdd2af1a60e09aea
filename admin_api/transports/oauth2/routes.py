"""HTTP endpoints of the resident key manager, mounted on admin_api's REST app ahead of
the admin routes. None of them takes the admin bearer credential.

Requests are read here (asynchronously), then authlib runs in a worker thread because
it and the Store are synchronous. Every answer carries `Cache-Control: no-store`.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from admin_api.metrics import count_token_request
from admin_api.services import users
from admin_api.transports.oauth2 import consent, form_guard, metadata
from admin_api.transports.oauth2.grants import Owner
from admin_api.transports.oauth2.resident import ResidentKeyManager
from admin_api.transports.oauth2.server import FormRequest, OAuthResponse

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
CREDENTIAL_FIELDS = ("username", "password")
# The sign-in and consent forms' own fields, never OAuth parameters.
FORM_FIELDS = (*CREDENTIAL_FIELDS, *consent.FIELDS, form_guard.FIELD)
EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# The login page must not be framed (clickjacking) nor load anything from elsewhere.
PAGE_HEADERS = {**NO_STORE, "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                           "form-action 'self'; frame-ancestors 'none'"}


class BadRequest(Exception):
    """The HTTP request cannot even be read as an OAuth request."""


def oauth_routes(resident: ResidentKeyManager) -> list[BaseRoute]:
    endpoints = _Endpoints(resident)
    return [
        _route(metadata.TOKEN_PATH, endpoints.token, "POST"),
        _route(metadata.AUTHORIZE_PATH, endpoints.authorize, "GET", "POST"),
        _route(metadata.INTROSPECT_PATH, endpoints.introspect, "POST"),
        _route(metadata.REVOKE_PATH, endpoints.revoke, "POST"),
        _route(metadata.JWKS_PATH, endpoints.jwks, "GET"),
        _route(metadata.OPENID_CONFIGURATION_PATH, endpoints.discovery, "GET"),
        _route(metadata.OAUTH_METADATA_PATH, endpoints.discovery, "GET"),
    ]


def _route(path: str, handler: Callable[[Request], Awaitable[Response]], *methods: str) -> Route:
    """A route that owns its path for every method: another method is a 405 here, never
    a fall-through to the admin API's catch-all route."""
    allow = ", ".join(methods)

    async def endpoint(request: Request) -> Response:
        if request.method not in methods:
            return JSONResponse({"error": "invalid_request", "error_description": f"Use {allow}."},
                                status_code=405, headers={**NO_STORE, "Allow": allow})
        return await handler(request)

    return Route(path, endpoint, methods=EVERY_METHOD)


class _Endpoints:
    def __init__(self, resident: ResidentKeyManager) -> None:
        self._resident = resident
        self._server = resident.server
        self._issuer = resident.issuer

    # JSON endpoints (RFC 6749 §5, RFC 7662, RFC 7009) ----------------------------------

    async def token(self, request: Request) -> Response:
        return await self._form_endpoint(request, self._server.create_token_response, count=count_token_request)

    async def introspect(self, request: Request) -> Response:
        return await self._form_endpoint(
            request, lambda req: self._server.create_endpoint_response("introspection", req))

    async def revoke(self, request: Request) -> Response:
        return await self._form_endpoint(
            request, lambda req: self._server.create_endpoint_response("revocation", req))

    async def jwks(self, request: Request) -> Response:
        keys = await run_in_threadpool(self._resident.keys.jwks)
        return JSONResponse(keys, headers={"Cache-Control": "max-age=60"}, media_type="application/json")

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(metadata.metadata(self._issuer), headers={"Cache-Control": "max-age=300"})

    async def _form_endpoint(self, request: Request, handle: Callable[[FormRequest], OAuthResponse],
                             count: Callable[[str | None, int, object], None] | None = None) -> Response:
        params: list[tuple[str, str]] = []
        try:
            params = await _read_form(request)
            oauth_request = self._oauth_request(request, params)
            _no_repeats(params)
            answer = await run_in_threadpool(handle, oauth_request)
        except BadRequest as exc:
            answer = self._server.handle_error_response(None, InvalidRequestError(str(exc)))
        except OAuth2Error as error:
            answer = self._server.handle_error_response(None, error)
        except ClientDisconnect:
            answer = OAuthResponse(400, {"error": "invalid_request"})
        except Exception:
            log.exception("resident key manager: unexpected error at %s", request.url.path)
            answer = OAuthResponse(500, {"error": "server_error"})
        if count is not None:
            count(next((value for name, value in params if name == "grant_type"), None), answer.status, answer.body)
        return _json_answer(answer)

    def _oauth_request(self, request: Request, params: list[tuple[str, str]],
                       form: dict[str, str] | None = None) -> FormRequest:
        authorizations = request.headers.getlist("authorization")
        if len(authorizations) > 1:
            raise BadRequest("Send at most one Authorization header.")
        headers = {"Authorization": authorizations[0]} if authorizations else {}
        # The issuer's URL, not the socket's: it is what clients were told to use.
        return FormRequest(request.method, self._issuer + request.url.path, headers, params, form)

    # The authorization endpoint (RFC 6749 §4.1) ----------------------------------------

    async def authorize(self, request: Request) -> Response:
        try:
            query = _parse(request.scope.get("query_string", b""))
            form: list[tuple[str, str]] = []
            if request.method == "POST":
                form = await _read_form(request)
            credentials = {k: v for k, v in form if k in CREDENTIAL_FIELDS or k in consent.FIELDS}
            if credentials:
                # Login CSRF: only the pages this server rendered may post credentials or consent.
                form_guard.check(request, next((v for k, v in form if k == form_guard.FIELD), ""), self._issuer)
            # The login form posts back to the URL it came from (the original query); a
            # client may also POST the authorization request itself as a form.
            params = query or [(k, v) for k, v in form if k not in FORM_FIELDS]
            oauth_request = self._oauth_request(request, params)
            return await run_in_threadpool(self._authorize, oauth_request, params, request.method, credentials)
        except form_guard.CrossSiteRequest as exc:
            log.warning("authorization endpoint: sign-in form refused: %s", exc)
            return _error_page(f"The sign-in was refused: {exc}. Open the sign-in page again.", status=403)
        except (BadRequest, ClientDisconnect) as exc:
            return _error_page(str(exc) or "The request could not be read.")
        except Exception:
            log.exception("resident key manager: unexpected error at the authorization endpoint")
            return _error_page("The server could not process the request.", status=500)

    def _authorize(self, oauth_request: FormRequest, params: list[tuple[str, str]], method: str,
                   credentials: dict[str, str]) -> Response:
        try:
            grant = self._server.get_consent_grant(oauth_request)
        except OAuth2Error as error:
            if error.redirect_uri:
                # The redirect URI is the client's own: errors go back to it (§4.1.2.1).
                return _redirect(self._server.handle_error_response(oauth_request, error))
            return _error_page(error.description or error.error)
        client = grant.client
        if consent.ANSWER_FIELD in credentials:
            return self._answer_consent(oauth_request, grant, params, credentials)
        if method == "GET" or not any(k in credentials for k in CREDENTIAL_FIELDS):
            return _login_page(params, client.client_id, oauth_request.payload.scope or "", self._issuer, error="")
        identity = users.authenticate_user(client.store, client.organization_id,
                                           credentials.get("username", ""), credentials.get("password", ""))
        if identity is None:
            return _login_page(params, client.client_id, oauth_request.payload.scope or "", self._issuer,
                               error="Invalid username or password.", status=401)
        if not client.first_party:
            return _consent_page(params, client, oauth_request.payload.scope or "", self._issuer,
                                 self._kek(), consent.Consent(identity.user_id, identity.username))
        return self._issue_code(oauth_request, grant, identity.user_id, identity.username)

    def _answer_consent(self, oauth_request: FormRequest, grant: Any, params: list[tuple[str, str]],
                        fields: dict[str, str]) -> Response:
        client = grant.client
        try:
            given = consent.verify(self._kek(), fields.get(consent.TICKET_FIELD, ""), client.client_id, params)
        except (consent.BadTicket, ValueError, KeyError, TypeError) as exc:
            return _error_page(f"The consent was refused: {exc}. Open the sign-in page again.", status=403)
        if fields[consent.ANSWER_FIELD] != consent.ALLOW:
            log.info("user %s denied client %s", given.user_id, client.client_id)
            error = AccessDeniedError(state=oauth_request.payload.state, redirect_uri=grant.redirect_uri)
            return _redirect(self._server.handle_error_response(oauth_request, error))
        return self._issue_code(oauth_request, grant, given.user_id, given.username)

    def _issue_code(self, oauth_request: FormRequest, grant: Any, user_id: str, username: str) -> Response:
        owner = Owner(subject=user_id, username=username)
        answer = self._server.create_authorization_response(oauth_request, grant_user=owner, grant=grant)
        log.info("authorization code issued to client %s for user %s", grant.client.client_id, user_id)
        return _redirect(answer)

    def _kek(self) -> Any:
        return self._resident.store.config.require_kek()


# --------------------------------------------------------------------------- reading

async def _read_form(request: Request) -> list[tuple[str, str]]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise BadRequest(f"The body is larger than {MAX_FORM_BYTES} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise BadRequest(f"The body is larger than {MAX_FORM_BYTES} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        return []
    if media_type != FORM_MEDIA_TYPE:
        raise BadRequest(f"Send the parameters as {FORM_MEDIA_TYPE}.")
    return _parse(body)


def _parse(raw: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(raw.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The parameters are not valid UTF-8 form encoding.") from None


def _no_repeats(params: list[tuple[str, str]]) -> None:
    # RFC 6749 §3.1, §3.2: request parameters MUST NOT be included more than once.
    seen: set[str] = set()
    for key, _ in params:
        if key in seen:
            raise BadRequest(f"The parameter '{key}' is repeated.")
        seen.add(key)


# --------------------------------------------------------------------------- answers

def _json_answer(answer: OAuthResponse) -> Response:
    headers = {name: value for name, value in answer.headers if name.lower() != "content-type"}
    headers.update(NO_STORE)
    body = answer.body if isinstance(answer.body, (dict, list)) else {}
    return Response(json.dumps(body, separators=(",", ":")), status_code=answer.status, headers=headers,
                    media_type="application/json")


def _redirect(answer: OAuthResponse) -> Response:
    location = next((value for name, value in answer.headers if name.lower() == "location"), None)
    if answer.status != 302 or location is None:
        return _error_page("The authorization request was refused.")
    return RedirectResponse(location, status_code=302, headers=NO_STORE)


def _error_page(message: str, status: int = 400) -> Response:
    body = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorization error</title></head>"
            f"<body><h1>Authorization error</h1><p>{html.escape(message)}</p></body></html>")
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def _consent_page(params: list[tuple[str, str]], client: Any, scope: str, issuer: str, kek: Any,
                  given: consent.Consent) -> Response:
    csrf = form_guard.new_token()
    body = consent.page_body(
        action=metadata.AUTHORIZE_PATH + "?" + urlencode(params), csrf_field=form_guard.FIELD, csrf=csrf,
        ticket_value=consent.ticket(kek, given, client.client_id, params),
        application=client.info.application_name or client.client_id, owner=client.info.application_owner,
        client_id=client.client_id, scope=scope, username=given.username)
    response = HTMLResponse(body, headers=PAGE_HEADERS)
    form_guard.set_cookie(response, csrf, issuer)
    return response


def _login_page(params: list[tuple[str, str]], client_id: str, scope: str, issuer: str, *, error: str,
                status: int = 200) -> Response:
    csrf = form_guard.new_token()
    action = metadata.AUTHORIZE_PATH + "?" + urlencode(params)
    notice = f"<p role=\"alert\">{html.escape(error)}</p>" if error else ""
    scopes = html.escape(scope) if scope else "(none)"
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in - Portcullis</title>
<style>body{{font-family:sans-serif;max-width:24rem;margin:3rem auto}}label{{display:block;margin:.5rem 0}}</style>
</head><body>
<h1>Sign in</h1>
<p>Application <code>{html.escape(client_id)}</code> asks for access with scopes: <code>{scopes}</code></p>
{notice}
<form method="post" action="{html.escape(action, quote=True)}">
<input type="hidden" name="{form_guard.FIELD}" value="{csrf}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in and allow</button>
</form>
</body></html>
"""
    response = HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
    form_guard.set_cookie(response, csrf, issuer)
    return response
