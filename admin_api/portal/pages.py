"""The page wrapper: every portal endpoint gets the session, the signed-in caller and
(for POST) the CSRF-checked form, and answers errors the same way: no session, the
sign-in page; a refused CSRF check, 403; an admin error on a form, the message on the
page the form came from."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin_api.access.caller import Caller, Role
from admin_api.errors import AdminError
from admin_api.portal.sessions import Session
from admin_api.portal.web import (SESSION_COOKIE, CsrfRefused, FormError, Portal, SignedOut, caller_of, check_csrf,
                                  current_session, read_form, redirect, render, signed_out_page)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ctx:
    portal: Portal
    request: Request
    session: Session
    caller: Caller
    form: dict[str, str]

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def field(self, name: str, limit: int = 2000) -> str:
        return self.form.get(name, "").strip()[:limit]


Handler = Callable[[Ctx], Awaitable[Response]]


def page(portal: Portal, path: str, handler: Handler, *, method: str = "GET", back: str = "") -> Route:
    """A portal route. `back` (a path with the route's parameters, e.g. "/apis/{api_id}")
    is where a POST goes after an admin error, with the error shown there."""

    async def endpoint(request: Request) -> Response:
        session = current_session(portal, request)
        if session is None:
            return await signed_out_page(portal, status=401 if method == "POST" else 200)
        try:
            caller = await caller_of(portal, session)
            if not caller.has(Role.SUBSCRIBER):
                return render("message.html", session, status=403, title="Subscribers only",
                              text="The developer portal is for users with the subscriber role. "
                                   "Ask an administrator of your organization for it.")
            form: dict[str, Any] = {}
            if method == "POST":
                form = await read_form(request)
                check_csrf(portal, request, session, form)
            return await handler(Ctx(portal, request, session, caller, form))
        except SignedOut:
            portal.sessions.end(request.cookies.get(SESSION_COOKIE))
            return await signed_out_page(portal, status=401)
        except CsrfRefused:
            return render("message.html", session, status=403, title="Request refused",
                          text="This form was not sent from this portal page (or the page is too old). "
                               "Go back, reload the page and try again.")
        except FormError as exc:
            return render("message.html", session, status=400, title="Bad request", text=str(exc))
        except AdminError as error:
            if method == "POST" and back:
                session.notify("error", error.message)
                return redirect("/portal" + back.format(**request.path_params))
            status = error.http_status if 400 <= error.http_status < 500 else 500
            return render("message.html", session, status=status, title="Not available", text=error.message)

    return Route(path, endpoint, methods=[method])
