"""The throttle stage inside decide(): which limits apply, the 429 and its fields, soft
limits, Unlimited, tier changes, and the response Envoy gets."""

from __future__ import annotations

import pytest
from portcullis.admin.v1 import admin_pb2, throttling_pb2

from authz_server.denials import ApiThrottled, ApplicationThrottled, BurstThrottled, SubscriptionThrottled
from authz_server.envoy_adapter import to_check_response
from authz_server.pipeline import Allow, decide
from authz_server.throttle.limiter import Throttle

from ..factories import NOW, PIZZA_BASE, PROD_KEY, index_of, make_api, make_key, make_request, pizza_world

Policy = throttling_pb2.ThrottlingPolicy
T0 = 1_800_000_000.0   # a minute boundary


def policy(name: str, kind: int, count: int, unit: int = Policy.MINUTE, *, burst: int = 0,
           burst_unit: int = Policy.SECOND, stop: bool = True, id: str | None = None) -> Policy:
    return Policy(id=id or f"tp-{name}-{kind}", organization_id="default", name=name, kind=kind, request_count=count,
                  unit=unit, burst_request_count=burst, burst_unit=burst_unit, stop_on_quota_reach=stop)


def world(*, tier: str = "Unlimited", app_tier: str = "Unlimited", api_policy: str = "",
          resource_policy: str = "", extra=()) -> list:
    records = pizza_world()
    api = make_api(resources=(("GET", "/menu"), ("POST", "/order"), ("GET", "/open", True)))
    api.throttling_policy = api_policy
    api.resources[1].throttling_policy = resource_policy
    records[1] = api
    records[2].throttling_tier = app_tier
    records[3].tier = tier
    return records + [policy("Unlimited", Policy.SUBSCRIPTION, 0), policy("Unlimited", Policy.APPLICATION, 0),
                      policy("Unlimited", Policy.API, 0)] + list(extra)


@pytest.fixture
def throttle():
    made = Throttle.local()
    yield made
    made.stop()


def call(index, throttle, now=T0, target="/menu", method="GET", key=PROD_KEY):
    headers = {"apikey": key} if key else {}
    return decide(make_request(PIZZA_BASE + target, method=method, headers=headers), index, now, throttle=throttle)


def test_a_subscription_tier_of_five_a_minute_allows_five_then_429(throttle):
    index = index_of(*world(tier="Five", extra=[policy("Five", Policy.SUBSCRIPTION, 5)]))
    decisions = [call(index, throttle, T0 + i) for i in range(6)]
    assert all(isinstance(d, Allow) for d in decisions[:5])
    assert dict(decisions[0].rate_limit_headers) == {"ratelimit-policy": '"subscription";q=5;w=60',
                                                     "ratelimit": '"subscription";r=4;t=60'}
    refused = decisions[5]
    assert isinstance(refused, SubscriptionThrottled) and refused.http_status == 429
    assert dict(refused.headers) == {"retry-after": "55", "ratelimit-policy": '"subscription";q=5;w=60',
                                     "ratelimit": '"subscription";r=0;t=55'}
    assert isinstance(call(index, throttle, T0 + 60), Allow)      # the next window


def test_the_429_reaches_envoy_with_its_fields(throttle):
    index = index_of(*world(tier="One", extra=[policy("One", Policy.SUBSCRIPTION, 1)]))
    allowed = to_check_response(call(index, throttle), None)
    assert {(h.header.key, h.header.value) for h in allowed.ok_response.response_headers_to_add} == {
        ("ratelimit-policy", '"subscription";q=1;w=60'), ("ratelimit", '"subscription";r=0;t=60')}
    denied = to_check_response(call(index, throttle), None).denied_response
    assert denied.status.code == 429
    headers = {h.header.key: h.header.value for h in denied.headers}
    assert headers["x-portcullis-reason"] == "subscription_throttled" and headers["retry-after"] == "60"
    assert '"code":"subscription_throttled"' in denied.body


def test_application_tier_counts_across_apis(throttle):
    records = world(app_tier="Two", extra=[policy("Two", Policy.APPLICATION, 2)])
    second_api = make_api("api-two", "/two/1.0.0")
    records += [second_api, make_key("key-two", "pck_two", api_id="api-two"),
                admin_pb2.Subscription(id="sub-2", organization_id="default", application_id="app-1",
                                       api_id="api-two", tier="Unlimited", status=admin_pb2.Subscription.ACTIVE)]
    index = index_of(*records)
    first = decide(make_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY}), index, T0, throttle=throttle)
    second = decide(make_request("/two/1.0.0/menu", headers={"apikey": "pck_two"}), index, T0, throttle=throttle)
    third = decide(make_request("/two/1.0.0/menu", headers={"apikey": "pck_two"}), index, T0, throttle=throttle)
    assert isinstance(first, Allow) and isinstance(second, Allow)
    assert isinstance(third, ApplicationThrottled)


def test_api_and_resource_policies(throttle):
    index = index_of(*world(api_policy="ApiThree", resource_policy="ResOne",
                            extra=[policy("ApiThree", Policy.API, 3), policy("ResOne", Policy.API, 1)]))
    assert isinstance(call(index, throttle, target="/order", method="POST"), Allow)
    assert isinstance(call(index, throttle, target="/order", method="POST"), ApiThrottled)   # the resource's
    assert isinstance(call(index, throttle), Allow)
    assert isinstance(call(index, throttle), Allow)
    refused = call(index, throttle)                                                           # the API's
    assert isinstance(refused, ApiThrottled) and '"api";q=3' in dict(refused.headers)["ratelimit-policy"]


def test_api_policies_apply_to_open_resources_too(throttle):
    index = index_of(*world(api_policy="ApiOne", extra=[policy("ApiOne", Policy.API, 1)]))
    assert isinstance(call(index, throttle, target="/open", key=None), Allow)
    assert isinstance(call(index, throttle, target="/open", key=None), ApiThrottled)


def test_burst_control_within_the_main_limit(throttle):
    index = index_of(*world(tier="Bursty", extra=[policy("Bursty", Policy.SUBSCRIPTION, 100, burst=2)]))
    assert [type(call(index, throttle, T0 + 0.1 * i)).__name__ for i in range(3)] == ["Allow", "Allow",
                                                                                     "BurstThrottled"]
    refused = call(index, throttle, T0 + 0.5)
    assert isinstance(refused, BurstThrottled) and dict(refused.headers)["retry-after"] == "1"
    assert isinstance(call(index, throttle, T0 + 1.0), Allow)


def test_stop_on_quota_reach_false_allows_and_marks(throttle):
    index = index_of(*world(tier="Soft", extra=[policy("Soft", Policy.SUBSCRIPTION, 1, stop=False)]))
    first, second = call(index, throttle), call(index, throttle)
    assert isinstance(first, Allow) and first.over_quota == ()
    assert isinstance(second, Allow) and second.over_quota == ("subscription",)
    response = to_check_response(second, None)
    assert response.dynamic_metadata.fields["over_quota"].string_value == "subscription"


def test_unlimited_never_throttles_and_sends_no_fields(throttle):
    index = index_of(*world())
    decisions = [call(index, throttle) for _ in range(50)]
    assert all(isinstance(d, Allow) and d.rate_limit_headers == () for d in decisions)


def test_a_tier_change_applies_to_the_next_call(throttle):
    tight = index_of(*world(tier="Five", extra=[policy("Five", Policy.SUBSCRIPTION, 1, id="tp-five")]))
    assert isinstance(call(tight, throttle), Allow)
    assert isinstance(call(tight, throttle), SubscriptionThrottled)
    raised = index_of(*world(tier="Five", extra=[policy("Five", Policy.SUBSCRIPTION, 3, id="tp-five")]))
    assert isinstance(call(raised, throttle), Allow)
    moved = index_of(*world(tier="Unlimited"))
    assert all(isinstance(call(moved, throttle), Allow) for _ in range(5))


def test_another_application_is_not_affected(throttle):
    records = world(tier="One", extra=[policy("One", Policy.SUBSCRIPTION, 1)])
    records += [admin_pb2.Application(id="app-2", organization_id="default", name="b", owner="bob",
                                      throttling_tier="Unlimited"),
                admin_pb2.Subscription(id="sub-b", organization_id="default", application_id="app-2",
                                       api_id="api-pizza", tier="One", status=admin_pb2.Subscription.ACTIVE),
                make_key("key-b", "pck_b", application_id="app-2")]
    index = index_of(*records)
    assert isinstance(call(index, throttle), Allow)
    assert isinstance(call(index, throttle), SubscriptionThrottled)
    assert isinstance(call(index, throttle, key="pck_b"), Allow)


def test_headers_on_allowed_calls_can_be_turned_off():
    quiet = Throttle.local(headers_on_allow=False)
    try:
        index = index_of(*world(tier="One", extra=[policy("One", Policy.SUBSCRIPTION, 1)]))
        assert call(index, quiet).rate_limit_headers == ()
        assert dict(call(index, quiet).headers)["retry-after"] == "60"
    finally:
        quiet.stop()


def test_no_throttle_means_nothing_is_throttled():
    index = index_of(*world(tier="One", extra=[policy("One", Policy.SUBSCRIPTION, 1)]))
    assert all(isinstance(call(index, None, NOW), Allow) for _ in range(3))
