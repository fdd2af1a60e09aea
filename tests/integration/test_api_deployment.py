"""Publishing an API deploys it on Envoy over xDS: each API reaches its own backend (the
user's own HTTP(S) servers here), with WSO2's path semantics, per environment, following
the lifecycle, and on the same API authz_server decided for."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hostile.raw_http import access_log_entries
from tests.integration.conftest import LiveMesh
from tests.integration.endpoints import http_client
from tests.integration.gateway import PROPAGATION_SECONDS, assert_denied, eventually, wait_until
from tests.integration.own_backend import OwnBackend, Seen, TestCa
from tests.integration.scenario import PublishedApi, create_api, unique

pytestmark = pytest.mark.integration

OPEN = [{"method": "*", "path": "/*", "open": True}]
SECURED = [{"method": "*", "path": "/*"}]


@pytest.fixture
def own() -> Iterator[Any]:
    started: list[OwnBackend] = []

    def make(name: str, **kwargs: Any) -> OwnBackend:
        backend = OwnBackend(name, **kwargs)
        started.append(backend)
        return backend

    yield make
    for backend in started:
        backend.close()


def deploy(live: LiveMesh, production: str, *, sandbox: str = "", resources: list | None = None,
           **fields: Any) -> PublishedApi:
    return create_api(live, resources=resources or OPEN, subscription_less=True, production_endpoint=production,
                      sandbox_endpoint=sandbox, **fields)


def routed(live: LiveMesh, path: str, **kwargs: Any) -> httpx.Response:
    """The first 200 for `path` once the API's route has reached Envoy."""
    return eventually(lambda: live.gateway.get(path, **kwargs), 200)


def _routed_to_endpoint(live: LiveMesh, path: str, endpoint_path: str) -> httpx.Response:
    """The first 200 for `path` that reached the endpoint whose path starts `endpoint_path`."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while True:
        answer = routed(live, path)
        if answer.json()["target"].startswith(endpoint_path) or time.monotonic() >= deadline:
            assert answer.json()["target"].startswith(endpoint_path), answer.json()
            return answer
        time.sleep(0.1)


def test_two_apis_reach_their_own_backends_with_path_query_and_host(live: LiveMesh, own) -> None:
    one, two = own("one"), own("two")
    petstore = deploy(live, one.url("/api"), context="/" + unique("petstore"), version="v1")
    orders = deploy(live, two.url())
    assert routed(live, petstore.base_path + "/pets?x=1&y=a%20b").json()["backend"] == "one"
    assert one.seen[-1] == Seen("GET", "/api/pets?x=1&y=a%20b", f"127.0.0.1:{one.port}", one.seen[-1].request_id)
    assert routed(live, orders.base_path + "/orders/7?z=2").json()["backend"] == "two"
    assert two.seen[-1].target == "/orders/7?z=2" and two.seen[-1].host == f"127.0.0.1:{two.port}"
    # The base path alone, and with a trailing slash, is the endpoint's own path.
    routed(live, petstore.base_path)
    assert one.seen[-1].target == "/api"
    routed(live, orders.base_path + "/")
    assert two.seen[-1].target == "/"
    assert len(two.seen) == 2 and len(one.seen) == 2  # nothing crossed over


def test_a_sandbox_key_reaches_the_sandbox_endpoint(live: LiveMesh, own) -> None:
    production, sandbox = own("production"), own("sandbox")
    api = deploy(live, production.url("/live"), sandbox=sandbox.url("/test"), resources=SECURED)
    _, sandbox_key = api.new_key(environment="SANDBOX")
    _, production_key = api.new_key(environment="PRODUCTION")
    assert routed(live, api.base_path + "/menu", headers={"apikey": sandbox_key}).json()["backend"] == "sandbox"
    assert sandbox.seen[-1].target == "/test/menu"
    assert routed(live, api.base_path + "/menu", headers={"apikey": production_key}).json()["backend"] == "production"
    assert production.seen[-1].target == "/live/menu"
    # A client cannot pick the environment itself: the header it sends is replaced.
    answer = live.gateway.get(api.base_path + "/menu", headers={"apikey": production_key,
                                                               "x-portcullis-environment": "sandbox"})
    assert answer.json()["backend"] == "production"


def test_an_endpoint_change_moves_traffic_without_restarting_envoy_or_failing_other_apis(live: LiveMesh,
                                                                                      own) -> None:
    old, new, bystander = own("old"), own("new"), own("bystander")
    moving = deploy(live, old.url())
    steady = deploy(live, bystander.url())
    routed(live, moving.base_path + "/x")
    routed(live, steady.base_path + "/x")
    envoy_pid = live.mesh["envoy"].pid
    statuses: list[int] = []
    stop = threading.Event()

    def keep_calling() -> None:
        with http_client(live.settings, base_url=live.gateway_url) as client:
            while not stop.is_set():
                statuses.append(client.get(steady.base_path + "/x").status_code)

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        wait_until(lambda: len(statuses) >= 5, "calls on the other API before the change")
        live.admin.call("PATCH", f"/v1/apis/{moving.id}", {"production_endpoint": new.url("/v2")})
        wait_until(lambda: live.gateway.get(moving.base_path + "/x").json().get("backend") == "new",
                   "traffic on the new endpoint", timeout=3.0)
        during = len(statuses)
        wait_until(lambda: len(statuses) >= during + 5, "calls on the other API after the change")
    finally:
        stop.set()
        caller.join()
    # Every call the new endpoint saw had the new path: never the new host with the old
    # route's rewrite (clusters arrive before routes; a new endpoint is a new cluster).
    assert new.seen and {request.target for request in new.seen} == {"/v2/x"}
    assert {request.target for request in old.seen} == {"/x"}
    assert live.mesh["envoy"].pid == envoy_pid
    assert set(statuses) == {200}


def test_lifecycle_decides_what_is_routed(live: LiveMesh, own) -> None:
    backend = own("lifecycle")
    api = deploy(live, backend.url(), context="/" + unique("life"))
    routed(live, api.base_path + "/a")
    live.admin.change_lifecycle(api.id, "DEPRECATED")
    assert live.gateway.get(api.base_path + "/a").status_code == 200  # DEPRECATED still serves
    live.admin.change_lifecycle(api.id, "BLOCKED")
    eventually(lambda: live.gateway.get(api.base_path + "/a"), 403, "api_blocked")
    seen = len(backend.seen)
    live.admin.change_lifecycle(api.id, "RETIRED")
    eventually(lambda: live.gateway.get(api.base_path + "/a"), 404, "api_not_deployed")
    assert len(backend.seen) == seen  # the backend saw nothing after BLOCKED


def test_a_created_api_is_not_routed(live: LiveMesh, own) -> None:
    backend = own("created")
    api = create_api(live, resources=OPEN, subscription_less=True, production_endpoint=backend.url(),
                     sandbox_endpoint="", publish=False)
    eventually(lambda: live.gateway.get(api.base_path + "/a"), 404, "api_not_deployed")
    assert_denied(live.gateway.get("/" + unique("nowhere") + "/a"), 404, "api_not_found")
    assert backend.seen == []


def test_https_endpoints_are_verified(live: LiveMesh, own, tmp_path: Path) -> None:
    ca = TestCa()
    secure = own("secure", tls=ca.server_context(tmp_path, dns="localhost"))
    trusted = deploy(live, secure.url("/tls", host="localhost"), upstream={"ca_bundle_pem": ca.pem})
    answer = routed(live, trusted.base_path + "/hello?q=1")
    assert answer.json()["backend"] == "secure" and secure.seen[-1].target == "/tls/hello?q=1"
    assert secure.seen[-1].host == f"localhost:{secure.port}"
    # Not signed by a CA the API trusts (the system trust store does not know the test CA).
    untrusted = deploy(live, secure.url("/tls", host="localhost"))
    refused = eventually(lambda: live.gateway.get(untrusted.base_path + "/hello"), 503, "backend_unavailable")
    assert "CERTIFICATE_VERIFY_FAILED" in refused.json()["message"]
    # Trusted CA, but the certificate does not name the host the endpoint names.
    other = own("other", tls=ca.server_context(tmp_path, dns="not-this-host.example", ip=""))
    mismatch = deploy(live, other.url(host="localhost"), upstream={"ca_bundle_pem": ca.pem})
    eventually(lambda: live.gateway.get(mismatch.base_path + "/hello"), 503, "backend_unavailable")
    assert other.seen == []


def _decided_api(live: LiveMesh, request_id: str) -> str:
    log = live.mesh["envoy"].log_path
    found: dict[str, str] = {}

    def logged() -> bool:
        found.update((e["request_id"], e["api_id"]) for e in access_log_entries(log) if e.get("request_id") == request_id)
        return request_id in found

    wait_until(logged, f"the access-log line of {request_id}", timeout=5.0)
    return found[request_id]


@pytest.mark.parametrize("bases, path, expected", [
    pytest.param(("/a", "/a/b"), "/a/b/c", "/a/b", id="deeper-context-wins"),
    pytest.param(("/a", "/a/b"), "/a/c", "/a", id="shallower-context"),
    pytest.param(("/a", "/a/b"), "/a/bc", "/a", id="prefix-without-slash-is-not-the-deeper-api"),
    pytest.param(("/a", "/a/b"), "/a/b", "/a/b", id="exact-deeper-base-path"),
    pytest.param(("/p/1.0.0", "/p/1.0.0-beta"), "/p/1.0.0-beta/menu", "/p/1.0.0-beta", id="beta-version"),
    pytest.param(("/p/1.0.0", "/p/1.0.0-beta"), "/p/1.0.0/menu", "/p/1.0.0", id="release-version"),
])
def test_overlapping_base_paths_route_to_the_api_authz_server_decided_for(live: LiveMesh, own, bases: tuple[str, str],
                                                                          path: str, expected: str) -> None:
    backend = own("overlap")
    root = "/" + unique("ov")
    name = unique("versions")  # only versions of one API may nest (path ownership)
    apis = {}
    for index, base in enumerate(bases):
        context, _, version = (root + base).rpartition("/")
        # The endpoint's own path names the API Envoy routed to.
        apis[base] = create_api(live, name=name, context=context + "/" + version, version=version, resources=OPEN,
                                subscription_less=True, production_endpoint=backend.url(f"/api{index}"),
                                sandbox_endpoint="")
        assert apis[base].base_path == root + base
    # Each API's route has reached Envoy once its own backend path answers: a 200 alone could
    # come from the shallower API's route while the deeper one is still on its way.
    for index, base in enumerate(bases):
        _routed_to_endpoint(live, root + base + "/ready", f"/api{index}/")
    answer = routed(live, root + path)
    routed_to = bases[int(answer.json()["target"].split("/")[1].removeprefix("api"))]
    assert routed_to == expected
    assert _decided_api(live, backend.seen[-1].request_id) == apis[expected].id
