"""Throttling through real Envoy beyond the subscription tier: an application's tier
across two APIs, an API-level and a resource-level policy, burst control, a soft limit
(stop_on_quota_reach false) that allows and counts, and Unlimited. Day windows for the
main limits, so that no window ends mid-test."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import LiveMesh
from tests.integration.metrics_scrape import authz_metrics_url, scrape, value as metric
from tests.integration.scenario import PIZZASHACK_RESOURCES, PublishedApi, create_api, unique

pytestmark = pytest.mark.integration


def _policy(live: LiveMesh, kind: str, count: int, **fields) -> str:
    return live.admin.call("POST", "/v1/throttling-policies", {
        "name": unique("Policy"), "kind": kind, "request_count": count, "unit": "DAY", **fields}, expect=201)["name"]


def _remaining(answer) -> int:
    return int(answer.headers["ratelimit"].split("r=")[1].split(";")[0])


def _first_counted(api: PublishedApi, value: str, subpath: str = "/menu", policy: str = ""):
    """Calls until one is decided under the new policy (its RateLimit-Policy names it, or
    any RateLimit field when `policy` is empty); returns that answer."""
    deadline = time.monotonic() + 30
    while True:
        answer = api.get(subpath, key=value)
        if answer.status_code == 200 and "ratelimit" in answer.headers and policy in answer.headers.get(
                "ratelimit-policy", ""):
            return answer
        assert time.monotonic() < deadline, f"the policy never applied: {answer.status_code} {answer.text[:200]}"
        time.sleep(0.05)


def _reason(answer) -> str:
    return answer.headers.get("x-portcullis-reason", "")


def test_an_application_tier_limits_the_application_across_two_apis(live: LiveMesh) -> None:
    tier = _policy(live, "APPLICATION", 5)
    first_api, second_api = create_api(live), create_api(live)
    app = live.admin.create_application(unique("app"), throttling_tier=tier)
    values = []
    for api in (first_api, second_api):
        live.admin.subscribe(app["id"], api.id)
        values.append(api.new_key(application_id=app["id"])[1])
    remaining = _remaining(_first_counted(first_api, values[0]))
    second = _first_counted(second_api, values[1])   # counted by the same application counter
    assert _remaining(second) == remaining - 1
    for index in range(remaining - 1):
        api, value = (first_api, values[0]) if index % 2 else (second_api, values[1])
        assert api.get("/menu", key=value).status_code == 200
    for api, value in ((first_api, values[0]), (second_api, values[1])):
        refused = api.get("/menu", key=value)
        assert (refused.status_code, _reason(refused)) == (429, "application_throttled")
        assert '"application";r=0;' in refused.headers["ratelimit"]


def test_an_api_policy_is_shared_by_every_caller_of_the_api(live: LiveMesh) -> None:
    api = create_api(live, throttling_policy=_policy(live, "API", 4))
    callers = []
    for _ in range(2):
        app, _ = api.subscribed_app()
        callers.append(api.new_key(application_id=app["id"])[1])
    remaining = _remaining(_first_counted(api, callers[0]))
    for index in range(remaining):
        assert api.get("/menu", key=callers[index % 2]).status_code == 200
    for value in callers:  # the other application is refused too: the count is the API's
        refused = api.get("/menu", key=value)
        assert (refused.status_code, _reason(refused)) == (429, "api_throttled")


def test_a_resource_policy_limits_that_resource_only(live: LiveMesh) -> None:
    limited = _policy(live, "API", 2)
    resources = [dict(r, throttling_policy=limited) if r["path"] == "/menu" else r for r in PIZZASHACK_RESOURCES]
    api = create_api(live, resources=resources)
    app, _ = api.subscribed_app()
    value = api.new_key(application_id=app["id"])[1]
    remaining = _remaining(_first_counted(api, value))
    for _ in range(remaining):
        assert api.get("/menu", key=value).status_code == 200
    refused = api.get("/menu", key=value)
    assert (refused.status_code, _reason(refused)) == (429, "api_throttled")
    for _ in range(5):  # another resource of the API is not limited
        assert api.get("/echo", key=value).status_code == 200


def test_burst_control_refuses_within_the_main_limit(live: LiveMesh) -> None:
    tier = _policy(live, "SUBSCRIPTION", 1000, burst_request_count=2, burst_unit="MINUTE")
    api = create_api(live)
    app, _ = api.subscribed_app(tier=tier)
    value = api.new_key(application_id=app["id"])[1]
    _first_counted(api, value)
    # Two a minute: within a few calls one is refused as a burst (a minute that ends
    # mid-test admits two more, hence up to four allowed before it).
    statuses = []
    for _ in range(6):
        answer = api.get("/menu", key=value)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert _reason(answer) == "burst_throttled" and int(answer.headers["retry-after"]) <= 60
            break
    assert statuses[-1] == 429 and statuses.count(200) <= 4, statuses


def test_a_soft_limit_allows_and_counts_the_calls_over_quota(live: LiveMesh) -> None:
    tier = _policy(live, "SUBSCRIPTION", 2, stop_on_quota_reach=False)
    api = create_api(live)
    app, _ = api.subscribed_app(tier=tier)
    value = api.new_key(application_id=app["id"])[1]
    remaining = _remaining(_first_counted(api, value))
    for _ in range(remaining):
        assert api.get("/menu", key=value).status_code == 200
    _, before = scrape(authz_metrics_url(live))
    for _ in range(3):
        over = api.get("/menu", key=value)
        assert over.status_code == 200 and '"subscription";r=0;' in over.headers["ratelimit"]
    _, after = scrape(authz_metrics_url(live))
    name = "portcullis_throttle_calls_total"
    assert metric(after, name, kind="subscription", result="over_quota") - metric(
        before, name, kind="subscription", result="over_quota") == 3
    assert metric(after, name, result="refused") == metric(before, name, result="refused")


def test_unlimited_never_throttles(live: LiveMesh) -> None:
    api = create_api(live)
    app, subscription = api.subscribed_app(tier="Unlimited")
    assert subscription["tier"] == "Unlimited"
    value = api.new_key(application_id=app["id"])[1]
    deadline = time.monotonic() + 30
    while api.get("/menu", key=value).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)  # the key may need a moment to reach authz_server
    statuses = [api.get("/menu", key=value).status_code for _ in range(40)]
    assert statuses.count(200) == 40 and 429 not in statuses
