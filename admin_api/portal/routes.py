"""The portal's routes on admin_api's REST app: sign-in, callback and sign-out here, the
API and application pages in their modules, the static files (one stylesheet, one small
script: the copy buttons) and an HTML 404 for the rest of /portal."""

from __future__ import annotations

import logging
import secrets
import ssl
from functools import partial
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from admin_api.access.caller import Role
from admin_api.dispatch import Dispatcher
from admin_api.errors import Unauthenticated
from admin_api.portal import signin
from admin_api.portal.api_pages import api_routes
from admin_api.portal.application_pages import application_routes
from admin_api.portal.client import client_for_id, client_id_of, portal_client
from admin_api.portal.signup import signup_routes
from admin_api.services.organizations import DEFAULT_ORGANIZATION, ORGANIZATION_ID_RE
from admin_api.portal.sessions import SessionStore
from admin_api.portal.web import (PREFIX, SECURITY_HEADERS, SESSION_COOKIE, SIGNIN_COOKIE, CsrfRefused, FormError,
                                  Portal, check_csrf, clear_cookie, current_session, read_form, redirect, render,
                                  set_cookie, signed_out_page)
from admin_api.transports.oauth2.resident import ResidentKeyManager
from portcullis_shared.scopes import ADMIN_SCOPE

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"portal.css": "text/css", "portal.js": "text/javascript"}
# The scope the portal asks for: the admin API's audience (portcullis_shared.scopes).
PORTAL_SCOPE = ADMIN_SCOPE


def create_portal(dispatcher: Dispatcher, resident: ResidentKeyManager, *, public_url: str, gateway_url: str,
                  multiple_secrets: bool, gateway_verify: ssl.SSLContext | bool = True) -> Portal:
    """The portal, its first-party OAuth clients known to the resident key manager: the
    default organization's registered, the others' found by id when asked for."""
    client = portal_client(dispatcher.store, public_url)
    resident.server.first_party[client.client_id] = client
    resident.server.first_party_resolver = partial(client_for_id, dispatcher.store, public_url)
    return Portal(dispatcher=dispatcher, resident=resident, sessions=SessionStore(), client_id=client.client_id,
                  public_url=public_url, gateway_url=gateway_url, multiple_secrets=multiple_secrets,
                  gateway_verify=gateway_verify)


def portal_routes(portal: Portal) -> list[BaseRoute]:
    async def home(request: Request) -> Response:
        return redirect(PREFIX + "/apis")

    async def start_signin(request: Request) -> Response:
        organization_id = request.query_params.get("org") or DEFAULT_ORGANIZATION
        client = None
        if ORGANIZATION_ID_RE.fullmatch(organization_id):
            client = await run_in_threadpool(client_for_id, portal.dispatcher.store, portal.public_url,
                                             client_id_of(organization_id))
        if client is None:
            return render("message.html", None, status=404, title="No such organization",
                          text=f"There is no organization {organization_id[:63]!r} to sign in to.")
        auth = signin.authorization_request(portal.resident.issuer, client.client_id, portal.redirect_uri,
                                            PORTAL_SCOPE)
        binding = secrets.token_urlsafe(32)
        portal.sessions.begin_signin(auth.state, auth.code_verifier, binding, client.client_id)
        response = RedirectResponse(auth.url, status_code=302, headers=SECURITY_HEADERS)
        set_cookie(portal, response, SIGNIN_COOKIE, binding, max_age=600)
        return response

    async def callback(request: Request) -> Response:
        params = request.query_params
        pending = portal.sessions.finish_signin(params.get("state", ""), request.cookies.get(SIGNIN_COOKIE))
        if pending is None:
            return render("message.html", None, status=400, title="Sign-in failed",
                          text="This sign-in was not started in this browser, or it took too long. Sign in again.")
        if "error" in params:
            return render("message.html", None, status=400, title="Sign-in failed",
                          text=params.get("error_description") or params["error"])
        try:
            tokens = await run_in_threadpool(signin.exchange_code, portal.resident, pending.client_id,
                                             portal.redirect_uri, params.get("code", ""), pending.code_verifier)
            caller = await run_in_threadpool(portal.dispatcher.authenticate, tokens.access_token)
        except (signin.SigninFailed, Unauthenticated) as exc:
            return render("message.html", None, status=400, title="Sign-in failed", text=str(exc))
        if not caller.has(Role.SUBSCRIBER):
            await run_in_threadpool(signin.revoke, portal.resident, pending.client_id, tokens.access_token)
            return render("message.html", None, status=403, title="Subscribers only",
                          text="The developer portal is for users with the subscriber role. "
                               "Ask an administrator of your organization for it.")
        session_id, _ = portal.sessions.create(tokens.access_token, caller.subject, tokens.expires_in,
                                               pending.client_id, caller.organization_id)
        log.info("portal: %s of %s signed in", caller.subject, caller.organization_id)
        response = redirect(PREFIX + "/apis")
        set_cookie(portal, response, SESSION_COOKIE, session_id, max_age=tokens.expires_in)
        clear_cookie(portal, response, SIGNIN_COOKIE)
        return response

    async def signout(request: Request) -> Response:
        session = current_session(portal, request)
        if session is not None:
            try:
                check_csrf(portal, request, session, await read_form(request))
            except (CsrfRefused, FormError):
                return render("message.html", session, status=403, title="Request refused",
                              text="Sign out from the portal's own button.")
            portal.sessions.end(request.cookies.get(SESSION_COOKIE))
            await run_in_threadpool(signin.revoke, portal.resident, session.client_id or portal.client_id,
                                    session.access_token)
            log.info("portal: %s signed out", session.username)
        response = await signed_out_page(portal, signed_out=True)
        clear_cookie(portal, response, SESSION_COOKIE)
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return render("message.html", None, status=404, title="Not found", text="No such page.")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name],
                            headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"})

    async def not_found(request: Request) -> Response:
        return render("message.html", current_session(portal, request), status=404, title="Not found",
                      text="No such page.")

    return [
        Route(PREFIX, home, methods=["GET"]),
        Route(PREFIX + "/", home, methods=["GET"]),
        Route(PREFIX + "/signin", start_signin, methods=["GET"]),
        Route(PREFIX + "/callback", callback, methods=["GET"]),
        Route(PREFIX + "/signout", signout, methods=["POST"]),
        Route(PREFIX + "/static/{name}", static, methods=["GET"]),
        *signup_routes(portal),
        *api_routes(portal),
        *application_routes(portal),
        Route(PREFIX + "/{rest:path}", not_found),
    ]
