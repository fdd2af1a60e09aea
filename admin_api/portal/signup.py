"""Self sign-up: anyone may create an account with the subscriber role (and no other) in
an organization whose admins turned `self_signup` on (UpdateOrganization; off by
default). The rule, the password checks and the audit record are the service's
(`users.sign_up`); this page only collects the form.

No session exists yet, so the form's CSRF token is a double-submit one: a random value
in an HttpOnly, SameSite=Strict cookie scoped to the sign-up page and the same value in
a hidden field, both needed and equal; Origin and Sec-Fetch-Site, when the browser sends
them, must say this portal.
"""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin_api.errors import AdminError
from admin_api.portal.web import (PREFIX, FormError, Portal, current_session, read_form, render)
from admin_api.services import organizations, users
from admin_api.services.organizations import DEFAULT_ORGANIZATION, ORGANIZATION_ID_RE

log = logging.getLogger(__name__)

PATH = PREFIX + "/signup"
COOKIE = "portal_signup_csrf"
COOKIE_SECONDS = 1800


def _organization(value: str | None) -> str:
    value = value or DEFAULT_ORGANIZATION
    return value if ORGANIZATION_ID_RE.fullmatch(value) else ""


def _closed(organization_id: str) -> Response:
    return render("message.html", None, status=403, title="Sign-up is closed",
                  text="This organization does not allow anyone to sign up: ask one of its admins for an "
                       "account.")


def _form(portal: Portal, organization_id: str, *, status: int = 200, error: str = "", username: str = "",
          token: str | None = None) -> Response:
    token = token or secrets.token_urlsafe(32)
    response = render("signup.html", None, status=status, organization_id=organization_id,
                      signup_token=token, error=error, username=username,
                      min_password=users.SIGNUP_MIN_PASSWORD)
    response.set_cookie(COOKIE, token, max_age=COOKIE_SECONDS, path=PATH, httponly=True, samesite="strict",
                        secure=portal.secure_cookies)
    return response


def _same_site(portal: Portal, request: Request, form: dict[str, str]) -> bool:
    origin = request.headers.get("origin")
    if origin is not None and origin != portal.origin:
        return False
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    cookie, field = request.cookies.get(COOKIE, ""), form.get("csrf", "")
    return bool(cookie) and bool(field) and secrets.compare_digest(cookie.encode(), field.encode())


def signup_routes(portal: Portal) -> list[Route]:
    store = portal.dispatcher.store

    async def show(request: Request) -> Response:
        if current_session(portal, request) is not None:
            return render("message.html", current_session(portal, request), title="Signed in",
                          text="You already have an account and are signed in.")
        organization_id = _organization(request.query_params.get("org"))
        if not organization_id or not await run_in_threadpool(organizations.self_signup_allowed, store,
                                                               organization_id):
            return _closed(organization_id)
        return _form(portal, organization_id)

    async def submit(request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormError as exc:
            return render("message.html", None, status=400, title="Bad request", text=str(exc))
        if not _same_site(portal, request, form):
            return render("message.html", None, status=403, title="Request refused",
                          text="This form was not sent from this portal's sign-up page (or the page is too old). "
                               "Go back, reload the page and try again.")
        organization_id = _organization(form.get("org"))
        username = form.get("username", "").strip()[:200]
        password = form.get("password", "")[:2000]
        if not organization_id:
            return _closed(organization_id)
        if password != form.get("password_again", ""):
            return _form(portal, organization_id, status=400, error="The two passwords differ.", username=username)
        try:
            await run_in_threadpool(users.sign_up, store, organization_id, username, password)
        except AdminError as error:
            if error.http_status == 403:
                return _closed(organization_id)
            return _form(portal, organization_id, status=error.http_status, error=error.message, username=username)
        log.info("portal: %s signed up in %s", username, organization_id)
        response = render("signed_up.html", None, status=201, username=username, organization_id=organization_id)
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict", secure=portal.secure_cookies)
        return response

    return [Route(PATH, show, methods=["GET"]), Route(PATH, submit, methods=["POST"])]
