"""Throttling on Redis through real Envoy: an authz_server (two workers) whose counters
are leased from a real redis-server admits within the bound under concurrent load, and
when Redis is killed under load it behaves as PORTCULLIS_THROTTLE_FAILURE_MODE says
(closed: 503 throttling_unavailable once the leases are spent; open: local counting,
calls go on), then recovers when Redis is back. Nothing else is refused meanwhile."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import SESSION_ENV, LiveMesh, start_live_mesh
from tests.integration.endpoints import http_client
from tests.integration.metrics_scrape import authz_metrics_url, scrape, value as metric
from tests.integration.scenario import PublishedApi, create_api, unique
from tests.redis_server import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["closed", "open"])
def redis_mesh(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveMesh, RedisServer, str]]:
    mode = request.param
    server = RedisServer(tmp_path_factory.mktemp(f"redis-{mode}")).start()
    try:
        env = {**SESSION_ENV, "PORTCULLIS_REDIS_URL": server.url, "PORTCULLIS_THROTTLE_FAILURE_MODE": mode,
               "PORTCULLIS_AUTHZ_WORKERS": "2"}
        for live in start_live_mesh(tmp_path_factory.mktemp(f"mesh-redis-{mode}"), env):
            yield live, server, mode
    finally:
        server.kill()


def _caller(api: PublishedApi, count: int, unit: str = "DAY") -> tuple[str, int]:
    """A key of a new application on a new tier of `count` per `unit`, once a call is
    counted under it; returns (key, what its RateLimit field says is left)."""
    tier = api.admin.call("POST", "/v1/throttling-policies", {
        "name": unique("Tier"), "kind": "SUBSCRIPTION", "request_count": count, "unit": unit}, expect=201)
    app, _ = api.subscribed_app(tier=tier["name"])
    _key, value = api.new_key(application_id=app["id"])
    deadline = time.monotonic() + 30
    while True:
        answer = api.get("/menu", key=value)
        if answer.status_code == 200 and "ratelimit" in answer.headers:
            return value, int(answer.headers["ratelimit"].split("r=")[1].split(";")[0])
        assert time.monotonic() < deadline, f"the tier never applied: {answer.status_code} {answer.text[:200]}"
        time.sleep(0.05)


def _store_up(live: LiveMesh) -> list[float]:
    _, samples = scrape(authz_metrics_url(live))
    return sorted(v for (name, _labels), v in samples.items() if name == "portcullis_throttle_store_up")


def _eventually(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_concurrent_calls_on_redis_admit_within_the_bound(redis_mesh) -> None:
    live, server, _mode = redis_mesh
    api = create_api(live)
    limit = 100
    value, remaining = _caller(api, limit)
    url = f"{live.gateway_url}{api.base_path}/menu"

    def calls(n: int) -> list[int]:
        with http_client(live.settings) as client:
            return [client.get(url, headers={"apikey": value}).status_code for _ in range(n)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = [s for result in pool.map(calls, [300 // 16 + 1] * 16) for s in result]
    assert set(statuses) <= {200, 429}
    admitted = statuses.count(200) + (limit - remaining)   # the calls before the burst, too
    assert 0.95 * limit <= admitted <= limit + max(1, limit // 100)
    with server.client() as client:
        assert client.dbsize() > 0   # the counts are Redis's, not only this replica's


def test_redis_killed_under_load_then_back(redis_mesh) -> None:
    live, server, mode = redis_mesh
    api = create_api(live)
    value, _ = _caller(api, 1000)   # leases of 1 % (10 calls): spent within seconds
    unlimited_app, _ = api.subscribed_app()
    _key, unlimited = api.new_key(application_id=unlimited_app["id"])
    _eventually(lambda: api.get("/menu", key=unlimited).status_code == 200)
    assert _store_up(live) == [1.0, 1.0]

    server.kill()
    seen: list[int] = []
    reasons: set[str] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = api.get("/menu", key=value)
        seen.append(answer.status_code)
        reasons.add(answer.headers.get("x-portcullis-reason", ""))
        assert api.get("/menu", key=unlimited).status_code == 200   # no counter, no Redis needed
        if mode == "closed" and answer.status_code == 503:
            break
        if mode == "open" and len(seen) >= 60 and 0.0 in _store_up(live):
            break
    if mode == "closed":
        assert seen[-1] == 503 and "throttling_unavailable" in reasons, seen[-20:]
        assert set(seen) <= {200, 503}   # the leases held are spent first, then refusals
    else:
        assert set(seen) == {200}, seen   # open: counted locally, nothing refused
    # A worker finds Redis gone at its next round trip (the one that needed a lease).
    _eventually(lambda: 0.0 in _store_up(live))

    server.start()   # the same port
    _eventually(lambda: _store_up(live) == [1.0, 1.0])
    _eventually(lambda: all(api.get("/menu", key=value).status_code == 200 for _ in range(5)))
