"""The Starlette app: one endpoint that routes by the proto http options, checks the
bearer credential, maps the request, runs the RPC in a worker thread and renders the
answer (JSON or an RFC 9457 problem)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import parse_qsl, quote

from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from google.protobuf.message import Message
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from admin_api.schema import ADMIN_PROTO_MODULES

from admin_api.access.caller import Caller
from admin_api.errors import AdminError
from admin_api.metrics import registry_for
from admin_api.transports.rest.bindings import HttpBinding, PathTemplate, load_bindings
from admin_api.transports.rest.body import MAX_BODY_BYTES, decode_json_object, read_body
from admin_api.transports.rest.openapi import build_openapi
from admin_api.transports.rest.problems import (
    UNAUTHENTICATED,
    Problem,
    from_admin_error,
    internal_error,
    invalid,
    problem_response,
)
from admin_api.transports.rest.request_mapping import build_request
from admin_api.transports.rest.routing import Router

logger = logging.getLogger("admin_api.transports.rest")

HEALTHZ = "/healthz"      # readiness: the database answers
LIVEZ = "/livez"          # liveness: the process serves HTTP (touches nothing)
METRICS = "/metrics"      # Prometheus text format
OPENAPI = "/openapi.json"
_NO_STORE = {"Cache-Control": "no-store"}  # answers may carry a key value shown once


class Dispatcher(Protocol):
    """What the REST layer needs from the service layer (admin_api.dispatch.Dispatcher)."""

    def authenticate(self, bearer_token: str | None) -> Caller: ...

    def call(self, method_full_name: str, request: Message, caller: Caller) -> Message: ...


def create_app(dispatcher: Dispatcher, *, max_body_bytes: int = MAX_BODY_BYTES,
               extra_routes: Sequence[BaseRoute] = (), health: Callable[[], None] | None = None,
               metrics: CollectorRegistry | None = None) -> Starlette:
    """The admin REST API over `dispatcher`, with `/healthz`, `/livez`, `/metrics` and
    `/openapi.json` (none of them takes a credential).

    `extra_routes` (the resident key manager's OAuth2 endpoints) are matched first and
    do not take the admin credential. `health()` raises when the database does not answer
    (`/healthz` is then 503); `metrics` is the registry `/metrics` serves."""
    bindings = load_bindings(*ADMIN_PROTO_MODULES)
    endpoint = _AdminEndpoint(dispatcher, bindings, max_body_bytes, health, metrics or registry_for())
    # One catch-all ASGI route (every method): the proto-driven router below decides 404/405.
    app = Starlette(routes=[*extra_routes, Route("/{path:path}", endpoint, methods=None)])
    # Starlette's `{path:path}` is `.*`, which stops at a newline: a path with `%0A` would
    # get Starlette's plain-text 404 instead of a problem document. Whatever no route
    # matched goes to the endpoint too.
    app.router.default = endpoint
    return app


def to_json(message: Message) -> dict[str, object]:
    """Output JSON: proto field names, enum names, and every field without presence
    (empty strings, zeros, false, [] and the enum's zero name) so readers see the whole
    shape; message fields (timestamps, sub-objects) appear only when set."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class _AdminEndpoint:
    def __init__(self, dispatcher: Dispatcher, bindings: list[HttpBinding], max_body_bytes: int,
                 health: Callable[[], None] | None, metrics: CollectorRegistry) -> None:
        self._dispatcher = dispatcher
        self._max_body_bytes = max_body_bytes
        self._health = health
        self._healthy = True   # the last /healthz outcome: a change is logged once
        self._metrics = metrics
        self._router: Router[HttpBinding | str] = Router()
        self._router.add("GET", PathTemplate.parse(HEALTHZ), HEALTHZ)
        self._router.add("GET", PathTemplate.parse(LIVEZ), LIVEZ)
        self._router.add("GET", PathTemplate.parse(METRICS), METRICS)
        self._router.add("GET", PathTemplate.parse(OPENAPI), OPENAPI)
        for binding in bindings:
            self._router.add(binding.http_method, binding.path, binding)
        # Built once: the descriptors do not change while the process runs.
        self._openapi = json.dumps(build_openapi(bindings), separators=(",", ":")).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        target: HttpBinding | str | None = None
        try:
            target, path_values = self._router.resolve(request.method, _raw_path(request))
            if target == HEALTHZ:
                return await self._readiness()
            if target == LIVEZ:
                return JSONResponse({"status": "ok"}, headers=_NO_STORE)
            if target == METRICS:
                page = await run_in_threadpool(generate_latest, self._metrics)
                return Response(page, media_type=CONTENT_TYPE_LATEST, headers=_NO_STORE)
            if target == OPENAPI:
                return Response(self._openapi, media_type="application/json")
            if not isinstance(target, HttpBinding):
                raise TypeError(f"unexpected route target {target!r}")
            return await self._call(target, path_values, request)
        except ClientDisconnect:
            # Nobody is left to read an answer; not a server error worth a traceback.
            return problem_response(invalid("the client went away before sending the whole body"))
        except Problem as problem:
            return problem_response(problem)
        except AdminError as error:
            return problem_response(from_admin_error(error))
        except Exception:
            operation = target.full_name if isinstance(target, HttpBinding) else request.method
            logger.exception("admin REST: unexpected error in %s", operation)
            return problem_response(internal_error())

    async def _readiness(self) -> Response:
        """200 when the database answers; 503 (and one log line per change) when it does not."""
        if self._health is None:
            return JSONResponse({"status": "ok"}, headers=_NO_STORE)
        try:
            await run_in_threadpool(self._health)
        except Exception as exc:
            if self._healthy:
                logger.error("admin REST: /healthz: the database does not answer: %s", type(exc).__name__)
                self._healthy = False
            return JSONResponse({"status": "unavailable", "database": "unavailable"}, status_code=503,
                                headers=_NO_STORE)
        if not self._healthy:
            logger.info("admin REST: /healthz: the database answers again")
            self._healthy = True
        return JSONResponse({"status": "ok", "database": "ok"}, headers=_NO_STORE)

    async def _call(self, binding: HttpBinding, path_values: dict[str, str], request: Request) -> Response:
        token = bearer_token(request.headers)
        caller = await run_in_threadpool(self._dispatcher.authenticate, token)

        raw = await read_body(request, self._max_body_bytes)
        if binding.has_body:
            body = decode_json_object(raw, request.headers.get("content-type"))
        elif raw.strip():
            raise invalid(f"{binding.method_name} takes no request body")
        else:
            body = None
        try:
            query = parse_qsl(
                request.scope.get("query_string", b"").decode("latin-1"),
                keep_blank_values=True,
                errors="strict",
            )
        except UnicodeDecodeError:
            raise invalid("the query string is not valid UTF-8") from None

        message = build_request(binding, path_values, query, body)
        answer = await run_in_threadpool(self._dispatcher.call, binding.full_name, message, caller)
        if not isinstance(answer, binding.response_class):
            raise TypeError(f"{binding.full_name} answered {type(answer).__name__}")
        if binding.response_is_empty:
            return Response(status_code=binding.success_status, headers=_NO_STORE)
        return JSONResponse(to_json(answer), status_code=binding.success_status, headers=_NO_STORE)


def bearer_token(headers: Headers) -> str:
    """The token of `Authorization: Bearer <token>`, or a 401 problem."""
    values = headers.getlist("authorization")
    if not values:
        raise Problem(401, UNAUTHENTICATED, "This operation needs an Authorization: Bearer <token> header.")
    if len(values) > 1:
        raise Problem(401, UNAUTHENTICATED, "Send exactly one Authorization header.")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Problem(401, UNAUTHENTICATED, "The Authorization header must be 'Bearer <token>'.")
    return token


def _raw_path(request: Request) -> str:
    # raw_path keeps percent-escapes (so %2F stays inside a segment); servers that do not
    # provide it get the decoded path re-quoted.
    raw = request.scope.get("raw_path")
    if raw:
        return raw.decode("latin-1")
    return quote(request.scope["path"], safe="/")
