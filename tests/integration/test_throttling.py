"""Throttling tiers through real Envoy: a subscription tier of 5 answers 5 calls and then
429 with Retry-After and the RateLimit fields, another application is not affected, and
a tier change applies to the next call. (Day windows, so that no window ends mid-test.)"""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import LiveMesh
from tests.integration.gateway import eventually
from tests.integration.metrics_scrape import authz_metrics_url, scrape, value as metric
from tests.integration.scenario import PublishedApi, create_api, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(live: LiveMesh) -> PublishedApi:
    return create_api(live)


def _policy(api: PublishedApi, count: int) -> dict:
    return api.admin.call("POST", "/v1/throttling-policies", {
        "name": unique("Tier"), "kind": "SUBSCRIPTION", "request_count": count, "unit": "DAY"}, expect=201)


def _limited_caller(api: PublishedApi, tier: str) -> tuple[str, dict]:
    """A key of a new application subscribed with `tier`, once its first call is decided
    under that tier (it carries the RateLimit fields); returns (key, that answer)."""
    app, subscription = api.subscribed_app(tier=tier)
    _key, value = api.new_key(application_id=app["id"])
    deadline = time.monotonic() + 30
    while True:
        answer = api.get("/menu", key=value)
        if answer.status_code == 200 and "ratelimit" in answer.headers:
            return value, {"answer": answer, "subscription": subscription}
        assert time.monotonic() < deadline, f"the tier never applied: {answer.status_code} {answer.text[:200]}"
        time.sleep(0.05)


def test_a_tier_of_five_answers_five_calls_then_429_with_retry_after(api: PublishedApi) -> None:
    tier = _policy(api, 5)
    value, first = _limited_caller(api, tier["name"])
    assert first["answer"].headers["ratelimit-policy"] == '"subscription";q=5;w=86400'
    remaining = int(first["answer"].headers["ratelimit"].split("r=")[1].split(";")[0])
    assert 0 <= remaining <= 4
    for _ in range(remaining):
        assert api.get("/menu", key=value).status_code == 200
    refused = api.get("/menu", key=value)
    assert refused.status_code == 429
    assert refused.json()["code"] == "subscription_throttled"
    assert refused.headers["x-portcullis-reason"] == "subscription_throttled"
    assert int(refused.headers["retry-after"]) >= 1
    assert '"subscription";r=0;' in refused.headers["ratelimit"]


def test_another_application_is_not_affected(api: PublishedApi) -> None:
    tier = _policy(api, 1)
    value, _ = _limited_caller(api, tier["name"])
    assert api.get("/menu", key=value).status_code == 429
    other, first = _limited_caller(api, tier["name"])
    assert first["answer"].status_code == 200


def test_a_tier_change_applies_to_the_next_calls(api: PublishedApi) -> None:
    tier = _policy(api, 1)
    value, first = _limited_caller(api, tier["name"])
    assert api.get("/menu", key=value).status_code == 429
    api.admin.call("PATCH", f"/v1/subscriptions/{first['subscription']['id']}", {"tier": "Unlimited"})
    eventually(lambda: api.get("/menu", key=value), 200)


def test_concurrent_connections_across_the_workers_admit_exactly_the_limit(api: PublishedApi) -> None:
    """16 connections at once, 300 calls in all, through Envoy to authz_server's workers
    (one endpoint each): the limit holds across them (at most L + max(1, 1 % of L), and
    here exactly L, since the workers share one counter table)."""
    import concurrent.futures

    from tests.integration.endpoints import http_client

    tier = _policy(api, 100)
    value, first = _limited_caller(api, tier["name"])
    remaining = int(first["answer"].headers["ratelimit"].split("r=")[1].split(";")[0])
    url = f"{api.live.gateway_url}{api.base_path}/menu"

    def caller(calls: int) -> list[int]:
        with http_client(api.live.settings) as client:
            return [client.get(url, headers={"apikey": value}).status_code for _ in range(calls)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = [status for result in pool.map(caller, [300 // 16 + 1] * 16) for status in result]
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == remaining


def test_metrics_count_the_calls_each_limit_admitted_and_refused(live: LiveMesh, api: PublishedApi) -> None:
    tier = _policy(api, 4)
    value, first = _limited_caller(api, tier["name"])
    remaining = int(first["answer"].headers["ratelimit"].split("r=")[1].split(";")[0])
    _, before = scrape(authz_metrics_url(live))
    for _ in range(remaining):
        assert api.get("/menu", key=value).status_code == 200
    for _ in range(2):
        assert api.get("/menu", key=value).status_code == 429
    _, after = scrape(authz_metrics_url(live))

    def delta(**labels: str) -> float:
        name = "portcullis_throttle_calls_total"
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta(kind="subscription", result="allowed") == remaining
    assert delta(kind="subscription", result="refused") == 2
    assert metric(after, "portcullis_decisions_total", reason="subscription_throttled") - metric(
        before, "portcullis_decisions_total", reason="subscription_throttled") == 2
