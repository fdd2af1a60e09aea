"""Login CSRF protection of the authorization endpoint's sign-in form.

A cross-site page must not be able to post the form with a victim's browser (signing the
victim in, or issuing a code to a client). Two checks, both before any password is read:

- Fetch metadata: a browser marks the form's own POST `Sec-Fetch-Site: same-origin`; any
  other value (cross-site, same-site) is refused. `Origin`, when sent, must be the
  issuer's origin or the request's own (`null`, from sandboxes and cross-origin
  redirects, is refused). Clients that send neither (old browsers, scripts) meet the
  second check alone.
- A token: the page sets a random value in an HttpOnly, SameSite=Strict cookie scoped to
  the authorization endpoint and puts the same value in a hidden field; a POST needs
  both, equal (compared in constant time). Another site can neither read the page (no
  CORS, no framing) nor set the cookie.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from admin_api.transports.oauth2 import metadata

FIELD = "csrf_token"
_COOKIE = "portcullis_authorize_csrf"
_SECURE_COOKIE = "__Host-" + _COOKIE   # https: bound to this host, Secure, Path=/
_COOKIE_SECONDS = 600


class CrossSiteRequest(Exception):
    """The form post did not come from the sign-in page itself."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _cookie_name(issuer: str) -> str:
    return _SECURE_COOKIE if issuer.startswith("https://") else _COOKIE


def set_cookie(response: Response, token: str, issuer: str) -> None:
    secure = issuer.startswith("https://")
    response.set_cookie(_cookie_name(issuer), token, max_age=_COOKIE_SECONDS, httponly=True, samesite="strict",
                        secure=secure, path="/" if secure else metadata.AUTHORIZE_PATH)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check(request: Request, form_token: str, issuer: str) -> None:
    """CrossSiteRequest unless this POST comes from the sign-in page of this server."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() != "same-origin":
        raise CrossSiteRequest(f"the form was posted from another site (Sec-Fetch-Site: {site})")
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() not in {_origin(issuer), _origin(str(request.url))}:
        raise CrossSiteRequest("the form was posted from another origin")
    cookie = request.cookies.get(_cookie_name(issuer), "")
    if not cookie or not form_token or not hmac.compare_digest(cookie.encode(), form_token.encode()):
        raise CrossSiteRequest("the sign-in form has expired or did not come from this server")
