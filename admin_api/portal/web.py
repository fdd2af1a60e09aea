"""What every portal page shares: the portal's context, the security headers, cookies,
the bounded form reader, the CSRF check, admin calls with the session's token, and
rendering (Jinja2 with autoescaping on: every value is escaped unless a template says
otherwise, and none does)."""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jinja2
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from admin_api.access.caller import Caller
from admin_api.dispatch import Dispatcher
from admin_api.errors import Unauthenticated
from admin_api.portal.sessions import Session, SessionStore
from admin_api.transports.oauth2.resident import ResidentKeyManager

PREFIX = "/portal"
SESSION_COOKIE = "portal_session"
SIGNIN_COOKIE = "portal_signin"
MAX_FORM_BYTES = 64 * 1024
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
RPC = "portcullis.admin.v1."
# Nothing from elsewhere, no inline script or style, no framing, forms only to us.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it Chromium sends `Origin: null` on our own form posts, and
    # the Origin check below would refuse them. Nothing leaves for another site.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                lstrip_blocks=True)


class FormError(Exception):
    """The request body is not a form we accept (size, media type, encoding)."""


class CsrfRefused(Exception):
    """A state-changing request without this session's CSRF token, or from elsewhere."""


class SignedOut(Exception):
    """No session (or its token stopped working): the page asks to sign in."""


@dataclass(frozen=True)
class Portal:
    dispatcher: Dispatcher
    resident: ResidentKeyManager
    sessions: SessionStore
    client_id: str
    public_url: str
    gateway_url: str
    multiple_secrets: bool
    # What Try it checks the gateway's certificate against (the mesh's CA with TLS on).
    gateway_verify: ssl.SSLContext | bool = True

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + PREFIX + "/callback"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.public_url).scheme == "https"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"


# --------------------------------------------------------------------------- sessions

def current_session(portal: Portal, request: Request) -> Session | None:
    return portal.sessions.get(request.cookies.get(SESSION_COOKIE))


def require_session(portal: Portal, request: Request) -> Session:
    session = current_session(portal, request)
    if session is None:
        raise SignedOut()
    return session


def set_cookie(portal: Portal, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="lax",
                        secure=portal.secure_cookies)


def clear_cookie(portal: Portal, response: Response, name: str) -> None:
    response.delete_cookie(name, path=PREFIX, httponly=True, samesite="lax", secure=portal.secure_cookies)


# ------------------------------------------------------------------------------ forms

async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict (a repeated field keeps its last value)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormError(f"the form is larger than {MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        return {}
    if media_type != FORM_MEDIA_TYPE:
        raise FormError(f"send the form as {FORM_MEDIA_TYPE}")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form is not valid UTF-8 form encoding") from None


def check_csrf(portal: Portal, request: Request, session: Session, form: dict[str, str]) -> None:
    """The synchronizer token of the session, and, when the browser says where the request
    comes from (Origin, Sec-Fetch-Site), that it is this site."""
    origin = request.headers.get("origin")
    if origin is not None and origin != portal.origin:
        raise CsrfRefused()
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise CsrfRefused()
    if not secrets.compare_digest(form.get("csrf", "").encode(), session.csrf_token.encode()):
        raise CsrfRefused()


# ------------------------------------------------------------------------ admin calls

async def caller_of(portal: Portal, session: Session) -> Caller:
    try:
        return await run_in_threadpool(portal.dispatcher.authenticate, session.access_token)
    except Unauthenticated:
        raise SignedOut() from None


async def rpc(portal: Portal, caller: Caller, method: str, request: Message) -> Message:
    """An admin RPC (e.g. "ApiService/ListApis") as the signed-in user; AdminError as raised."""
    return await run_in_threadpool(portal.dispatcher.call, RPC + method, request, caller)


def as_dict(message: Message) -> dict[str, Any]:
    """For templates: proto field names and enum names, every field present."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


# -------------------------------------------------------------------------- rendering

def render(template: str, session: Session | None, status: int = 200, **values: Any) -> Response:
    page = _TEMPLATES.get_template(template).render(
        session=session, csrf=session.csrf_token if session else "", prefix=PREFIX,
        shown_once=session.take_shown_once() if session else [],
        notices=session.take_notices() if session else [], **values)
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


async def signed_out_page(portal: Portal, status: int = 200, **values: Any) -> Response:
    """The sign-in invitation, with a sign-up link when the default organization allows it."""
    from admin_api.services.organizations import DEFAULT_ORGANIZATION, self_signup_allowed

    signup_open = await run_in_threadpool(self_signup_allowed, portal.dispatcher.store, DEFAULT_ORGANIZATION)
    return render("signed_out.html", None, status=status, signup_open=signup_open, **values)


def redirect(path: str) -> Response:
    """303 See Other to a portal path (after a POST: the browser GETs the page)."""
    if not path.startswith(PREFIX + "/"):
        path = PREFIX + "/"
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)
