"""Hostile paths through the real Envoy: the API and resource authz_server decided for
are the ones the backend received the request for.

Every allowed row reads what the backend got (the sample backend's echo: raw path and the
request id Envoy gave the request) and the access-log line of that request id (the API and
resource of authz_server's decision, from the ext_authz dynamic metadata); the test then
routes the backend's path itself, the way a backend framework would (split on "/", decode
each segment), and the two must agree. Denied rows must not reach a backend at all."""

from __future__ import annotations

import ssl
from typing import Any, Iterator
from urllib.parse import unquote

import pytest

from authz_server.index.resources import best_match, compile_resource, split_path
from tests.integration.conftest import LiveMesh, start_live_mesh
from tests.integration.endpoints import client_verify
from tests.integration.gateway import wait_until
from tests.integration.scenario import create_api, unique

from .raw_http import RawResponse, access_log_entries, raw_get

pytestmark = pytest.mark.integration

OUTER_RESOURCES: list[dict[str, Any]] = [
    {"method": "GET", "path": "/echo"},
    {"method": "GET", "path": "/echo/*"},
    {"method": "GET", "path": "/open/echo", "open": True},
    {"method": "GET", "path": "/open/echo/*", "open": True},
    {"method": "GET", "path": "/items/{id}/echo", "open": True},
]
INNER_RESOURCES: list[dict[str, Any]] = [{"method": "GET", "path": "/echo/*", "open": True}]


class Paths:
    def __init__(self, live: LiveMesh) -> None:
        self.live = live
        context = "/" + unique("hx")
        backend = f"http://{live.settings.host}:{live.settings.backend_production_port}"
        # Each API's endpoint has its own path prefix, which replaces the base path: the
        # prefix the backend sees tells which API Envoy routed the request to.
        self.outer = create_api(live, context=context, resources=OUTER_RESOURCES, subscription_less=True,
                                production_endpoint=backend + "/be-outer")
        # A second version of the same API whose base path lies inside the first one's (only
        # versions of one API may nest): route confusion target.
        self.inner = create_api(live, context=self.outer.base_path + "/inner", version="2.0",
                                name=self.outer.api["name"], resources=INNER_RESOURCES, subscription_less=True,
                                production_endpoint=backend + "/be-inner")
        self.apis = [self.outer, self.inner]
        self.prefixes = {("be-outer",): self.outer, ("be-inner",): self.inner}

    def get(self, target: str, headers: dict[str, str] | None = None) -> RawResponse:
        target = target.replace("{A_UPPER}", self.outer.base_path.upper()).replace("{A}", self.outer.base_path).replace("{B}", self.inner.base_path)
        settings = self.live.settings
        verify = client_verify(settings)
        return raw_get(settings.host, settings.gateway_port, target, headers,
                       tls=verify if isinstance(verify, ssl.SSLContext) else None)

    def backend_view(self, path: str) -> tuple[str, str]:
        """(api id, "METHOD template") as a backend framework would route `path`."""
        segments = tuple(unquote(segment) for segment in split_path(path))
        api = self.prefixes[segments[:1]]
        rest = segments[1:]
        matchers = [compile_resource(r["method"], r["path"], open=r.get("open", False)) for r in api.api["resources"]]
        resource = best_match(matchers, "GET", rest)
        assert resource is not None, f"the backend's path {path} is no resource of {api.base_path}"
        return api.id, f"{resource.method} {resource.template}"

    def decisions_of(self, request_ids: set[str]) -> dict[str, dict[str, Any]]:
        """The access-log lines of these request ids (Envoy flushes its log every 0.5 s)."""
        log = self.live.mesh["envoy"].log_path
        assert log is not None
        found: dict[str, dict[str, Any]] = {}

        def logged() -> bool:
            found.update((e["request_id"], e) for e in access_log_entries(log) if e.get("request_id") in request_ids)
            return set(found) == request_ids

        wait_until(logged, f"access-log lines for {len(request_ids)} requests", timeout=5.0)
        return found


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    for live in start_live_mesh(tmp_path_factory.mktemp("hostile-paths")):
        world = Paths(live)
        # Propagation: the inner API's open resource answers once authz_server has both.
        wait_until(lambda: world.get("{B}/echo/ready").status == 200, "the APIs reached authz_server")
        yield world


LONG = "a" * 6000

# (id, target) that are allowed (open resources): decision and backend must agree.
ALLOWED = [
    ("plain", "{A}/open/echo/x"),
    ("dot-dot", "{A}/open/echo/a/../x"),
    ("dot", "{A}/open/./echo/x"),
    ("double-slash", "{A}//open//echo//x"),
    ("trailing-slash", "{A}/open/echo/"),
    ("trailing-slash-deep", "{A}/open/echo/x/"),
    ("encoded-dot-dot", "{A}/open/echo/a/%2e%2e/x"),
    ("encoded-dot-dot-upper", "{A}/open/echo/a/%2E%2E/x"),
    ("half-encoded-dot-dot", "{A}/open/echo/a/.%2e/x"),
    ("encoded-dot", "{A}/open/%2e/echo/x"),
    ("encoded-letter", "{A}/open/%65cho/x"),
    ("dot-dot-into-inner-api", "{A}/open/../inner/2.0/echo/x"),
    ("inner-api", "{B}/echo/x"),
    ("inner-api-dot-dot-to-outer", "{B}/../../open/echo/x"),
    ("param", "{A}/items/42/echo"),
    ("param-dot-dot", "{A}/items/42/../7/echo"),
    ("very-long-segment", "{A}/open/echo/" + LONG),
    ("very-many-segments", "{A}/open/echo" + "/a" * 2000),
    ("dot-dot-above-root", "/../../../" + "{A}/open/echo/x"),
    ("encoded-space", "{A}/open/echo/a%20b"),
    ("unicode", "{A}/open/echo/%C3%A9"),
    ("double-encoded-dot-dot", "{A}/open/echo/%252e%252e/x"),
    ("double-encoded-slash", "{A}/open/echo/a%252Fb"),
    # Envoy's normalisation resolves a literal `.;...` / `..;` segment itself, so the backend
    # receives the path decided on.
    ("dot-semicolon", "{A}/open/echo/.;jsessionid=1/x"),
    ("dot-dot-semicolon-last", "{A}/open/echo/x/y/..;"),
]


@pytest.fixture(scope="module")
def allowed_answers(paths: Paths) -> dict[str, tuple[RawResponse, dict[str, Any] | None]]:
    """Every allowed row sent once, then the access log read once for all of them."""
    responses = {target: paths.get(target) for _, target in ALLOWED}
    ids = {r.json()["headers"]["x-request-id"] for r in responses.values() if r.status == 200 and r.reached_backend}
    decisions = paths.decisions_of(ids)
    answers = {}
    for target, response in responses.items():
        reached = response.status == 200 and response.reached_backend
        answers[target] = (response, decisions[response.json()["headers"]["x-request-id"]] if reached else None)
    return answers


@pytest.mark.parametrize("target", [t for _, t in ALLOWED], ids=[i for i, _ in ALLOWED])
def test_the_decision_is_about_the_path_the_backend_receives(paths: Paths, allowed_answers, target: str) -> None:
    response, decision = allowed_answers[target]
    assert decision is not None, (response.status, response.body[:300])
    echo_path = response.json()["path"]
    assert decision["reason"] == "allowed"
    assert (decision["api_id"], decision["resource"]) == paths.backend_view(echo_path), (target, echo_path)


# (id, target, headers, status, code): denied, and nothing reaches a backend.
DENIED = [
    ("dot-dot-from-open-to-secured", "{A}/open/echo/../../echo/x", 401, "credential_missing"),
    ("encoded-dot-dot-from-open-to-secured", "{A}/open/echo/%2e%2e/%2e%2e/echo/x", 401, "credential_missing"),
    ("dot-dot-out-of-every-api", "{A}/open/../../../x/echo", 404, "api_not_found"),
    ("encoded-slash", "{A}/open/echo%2F..%2F..%2Fecho/x", 400, "bad_request"),
    ("encoded-slash-lower", "{A}/open%2fecho/x", 400, "bad_request"),
    ("encoded-backslash", "{A}/open/echo%5C..%5C..%5Cecho/x", 400, "bad_request"),
    ("encoded-nul", "{A}/open/echo/%00", 400, "bad_request"),
    ("case-of-resource", "{A}/OPEN/echo/x", 404, "resource_not_found"),
    ("case-of-base-path", "{A_UPPER}/open/echo/x", 404, "api_not_found"),
    ("segment-parameter", "{A}/open;x=1/echo/x", 404, "resource_not_found"),
    ("truncated-escape", "{A}/open/echo/%e", 400, "bad_request"),
    ("not-utf8-escape", "{A}/open/echo/%ff", 400, "bad_request"),
    ("base-path-prefix-not-segment", "{A}x/open/echo/x", 404, "api_not_found"),
    # `..;` and `.;` with a `%2e`: Envoy decodes the dot but keeps the segment, and Tomcat,
    # Spring, Jetty and proxies drop `;...` and resolve it (`/open/%2e%2e;/echo/x` →
    # `/echo/x`, secured): Envoy's own route refuses it, and authz_server would too.
    # (Without an encoded dot Envoy's normalisation resolves it itself: rows below.)
    ("dot-dot-semicolon-from-open-to-secured", "{A}/open/..;/echo/x", 401, "credential_missing"),
    ("encoded-dot-dot-semicolon", "{A}/open/%2e%2e;/echo/x", 400, "bad_request"),
    ("encoded-dot-dot-semicolon-upper", "{A}/open/%2E%2E;/echo/x", 400, "bad_request"),
    ("half-encoded-dot-dot-semicolon", "{A}/open/.%2e;x=1/echo/x", 400, "bad_request"),
    ("encoded-dot-semicolon", "{A}/open/echo/%2e;/x", 400, "bad_request"),
    ("dot-dot-encoded-semicolon", "{A}/open/..%3B/echo/x", 400, "bad_request"),
    ("encoded-dot-dot-semicolon-last", "{A}/open/echo/x/%2e%2e;", 400, "bad_request"),
    # Beyond Envoy's request-header limit (60 KiB): Envoy refuses it itself.
    ("path-over-envoy-header-limit", "{A}/open/echo/" + "a" * 70_000, 431, None),
]


@pytest.mark.parametrize(("target", "status", "code"), [(t, s, c) for _, t, s, c in DENIED], ids=[i for i, *_ in DENIED])
def test_hostile_paths_are_denied_before_any_backend(paths: Paths, target: str, status: int, code: str | None) -> None:
    response = paths.get(target)
    assert (response.status, response.reason_code) == (status, code)
    assert response.headers.get("x-portcullis-reason") == code
    assert not response.reached_backend


@pytest.mark.parametrize("target", ["{A}/open/%2e%2e;/echo/x", "{A}/open/.%2E;x/echo/x", "{A}/open/echo/%2E;x/y"],
                         ids=["encoded", "half-encoded", "encoded-dot"])
def test_envoy_itself_refuses_dot_segments_with_parameters(paths: Paths, target: str) -> None:
    """Envoy's own route answers (not authz_server's decision): it holds even if the
    authorization service answered otherwise."""
    response = paths.get(target)
    assert (response.status, response.reason_code) == (400, "bad_request")
    assert "direct_response" in response.json()["message"]
    assert not response.reached_backend
