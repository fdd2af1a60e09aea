"""Settings the admin API used to accept although they could never work, and one it
refused although authz_server supports it (issue 18, item 6):

- an API-key header (or backend JWT header) that is hop-by-hop or owned by Envoy: Host,
  Connection, X-Forwarded-For, x-envoy-*, ... never reaches the decision as the client
  sent it;
- a resource literal that decodes to `/` (`%2F`), `\\` or NUL, or to a dot segment: no
  request path holds such a segment (Envoy and authz_server refuse them), so the
  resource could never match;
- the referrer pattern `www.example.com/docs/*` (paths under /docs), documented and
  matched by authz_server, was refused by admin validation.

Each refusal is 400 naming the field, and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from .admin_world import AdminWorld, start_admin_world, stop_admin_world

GOOD_API = {"name": "Unworkable", "version": "1.0.0", "context": "/unworkable",
            "production_endpoint": "http://127.0.0.1:8091"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminWorld]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
        admin = start_admin_world(tmp_path_factory.mktemp("admin-unworkable"))
        yield admin
        stop_admin_world(admin)


def _post(world: AdminWorld, path: str, body: dict[str, Any]):
    return world.rest.post(path, content=json.dumps(body).encode(),
                           headers={**world.auth, "content-type": "application/json"})


def _refused(world: AdminWorld, path: str, body: dict[str, Any], field: str, *words: str) -> None:
    before = world.fingerprint()
    response = _post(world, path, body)
    assert response.status_code == 400, response.text[:500]
    detail = response.json()["detail"]
    assert field in detail, detail
    for word in words:
        assert word in detail, detail
    assert world.fingerprint() == before


UNUSABLE_HEADERS = ["Host", "Connection", "X-Forwarded-For", "x-forwarded-proto", "Transfer-Encoding", "TE",
                    "Upgrade", "Keep-Alive", "Proxy-Authorization", "Content-Length", "X-Request-Id",
                    "x-envoy-original-path", "X-Envoy-Decorator-Operation", "Forwarded", "Via"]


@pytest.mark.parametrize("header", UNUSABLE_HEADERS)
def test_an_api_key_header_that_is_hop_by_hop_or_envoys_own_is_refused(world: AdminWorld, header: str):
    _refused(world, "/v1/apis", {**GOOD_API, "security": {"api_key": {"header": header}}},
             "header", "hop-by-hop")


@pytest.mark.parametrize("header", ["Host", "X-Forwarded-For", "x-envoy-upstream-service-time"])
def test_a_backend_jwt_header_that_is_hop_by_hop_or_envoys_own_is_refused(world: AdminWorld, header: str):
    _refused(world, "/v1/apis", {**GOOD_API, "backend_jwt": {"enabled": True, "header": header}},
             "backend_jwt.header", "hop-by-hop")


UNREACHABLE_LITERALS = ["/files/a%2Fb", "/files/a%2fb", "/files/%2F", "/files/a%5Cb", "/files/a%00",
                        "/files/../admin", "/files/%2e%2e", "/files/.", "/files/..;x=1", "/files/%2E%2E%3B"]


@pytest.mark.parametrize("path", UNREACHABLE_LITERALS)
def test_a_resource_literal_no_request_can_hold_is_refused(world: AdminWorld, path: str):
    _refused(world, "/v1/apis", {**GOOD_API, "resources": [{"method": "GET", "path": path}]},
             "resources[0].path", "no request")


def test_the_usable_neighbours_are_accepted(world: AdminWorld):
    """The control row: an ordinary header name and literals with other escapes or dots."""
    response = _post(world, "/v1/apis", {
        **GOOD_API, "security": {"api_key": {"header": "X-Api-Key"}},
        "backend_jwt": {"enabled": True, "header": "X-JWT-Assertion"},
        "resources": [{"method": "GET", "path": "/files/a%20b"}, {"method": "GET", "path": "/files/v1.2"},
                      {"method": "GET", "path": "/files/...more"}, {"method": "GET", "path": "/files/a;b"}]})
    assert response.status_code == 201, response.text[:500]
    assert response.json()["security"]["api_key"]["header"] == "x-api-key"


@pytest.fixture(scope="module")
def api_id(world: AdminWorld) -> str:
    response = _post(world, "/v1/apis", {**GOOD_API, "name": "Referrers", "context": "/referrers"})
    assert response.status_code == 201, response.text[:500]
    published = _post(world, f"/v1/apis/{response.json()['id']}/lifecycle", {"target_state": "PUBLISHED"})
    assert published.status_code == 200, published.text[:500]
    return response.json()["id"]


@pytest.mark.parametrize("pattern", ["www.example.com/docs/*", "www.example.com/docs/v2/*", "*.example.com/docs/*",
                                     "www.example.com/*", "www.example.com/docs"])
def test_the_referrer_patterns_authz_server_matches_are_accepted(world: AdminWorld, api_id: str, pattern: str):
    response = _post(world, f"/v1/apis/{api_id}/api-keys", {"name": "referrer-key", "allowed_referrers": [pattern]})
    assert response.status_code == 201, response.text[:500]
    assert response.json()["api_key"]["allowed_referrers"] == [pattern]


@pytest.mark.parametrize("pattern", ["www.example.com/docs*", "www.example.com/*/docs", "www.example.com/do*cs/*"])
def test_a_referrer_wildcard_not_after_a_slash_at_the_end_is_refused(world: AdminWorld, api_id: str, pattern: str):
    _refused(world, f"/v1/apis/{api_id}/api-keys", {"name": "referrer-key", "allowed_referrers": [pattern]},
             "allowed_referrers", "last segment")


@pytest.mark.parametrize("pattern", ["www.example.com/docs/*", "*.example.com/docs/*"])
def test_an_accepted_referrer_pattern_compiles_in_authz_server(pattern: str):
    """What admin validation accepts, authz_server compiles (never a record it drops)."""
    from admin_api.services.validation import referrer_restrictions
    from authz_server.index.referrers import compile_referrer, parse_referer

    compiled = compile_referrer(referrer_restrictions([pattern])[0])
    assert compiled.matches(parse_referer("https://www.example.com/docs/page"))  # type: ignore[arg-type]
    assert not compiled.matches(parse_referer("https://www.example.com/blog"))  # type: ignore[arg-type]
