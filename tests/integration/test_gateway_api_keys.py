"""API-bound API keys through Envoy: revoke, regenerate, expiry, IP and referrer rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.conftest import LiveMesh
from tests.integration.gateway import assert_allowed, assert_denied, eventually
from tests.integration.scenario import PublishedApi, create_api, ready_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(live: LiveMesh) -> PublishedApi:
    return create_api(live)


def test_a_revoked_key_is_denied_within_about_a_second(api: PublishedApi) -> None:
    key, value, _app = ready_key(api)
    eventually(lambda: api.get("/menu", key=value), 200)

    revoked = api.admin.revoke(key["id"])
    assert revoked["status"] == "REVOKED"
    # The deadline of the poll (PROPAGATION_SECONDS) is the bound: normally well under 1 s.
    denied = eventually(lambda: api.get("/menu", key=value), 401, "api_key_revoked")
    assert_denied(denied, 401, "api_key_revoked")
    assert_denied(api.get("/menu", key=value, in_query=True), 401, "api_key_revoked")


def test_regenerate_revokes_the_old_value_and_keeps_the_association(api: PublishedApi) -> None:
    key, old_value, app = ready_key(api)
    eventually(lambda: api.get("/menu", key=old_value), 200)

    new_key, new_value = api.admin.regenerate(key["id"])
    assert new_value != old_value
    assert new_key["application_id"] == app["id"]
    assert new_key["api_id"] == api.id
    eventually(lambda: api.get("/menu", key=new_value), 200)
    assert_denied(api.get("/menu", key=old_value), 401, "api_key_revoked")

    old = api.admin.get_key(key["id"])
    assert old["status"] == "REVOKED"
    assert old.get("replaced_by") == new_key["id"]
    assert api.admin.get_key(new_key["id"])["application_id"] == app["id"]


def test_a_key_with_a_validity_carries_its_expiry_and_works_until_then(api: PublishedApi) -> None:
    """The expiry is set from validity_days and the key serves before it. No process
    accepts a fake clock, so the denial past expiry (api_key_expired) is in
    test_services_stopped_and_restarted, which moves a stored expiry into the past and
    restarts authz_server."""
    before = datetime.now(timezone.utc)
    key, value, _app = ready_key(api, validity_days=1)
    expires_at = datetime.fromisoformat(key["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(days=1) - timedelta(minutes=1) <= expires_at <= datetime.now(timezone.utc) + timedelta(days=1, minutes=1)
    eventually(lambda: api.get("/menu", key=value), 200)

    forever, _forever_value, _app = ready_key(api)
    assert not forever.get("expires_at"), "a key without validity must never expire"


@pytest.mark.parametrize("allowed_ips", [["127.0.0.1/32"], ["127.0.0.1"], ["::1", "127.0.0.0/8"]], ids=["cidr32", "address", "ipv6-and-cidr8"])
def test_a_key_restricted_to_the_client_ip_is_allowed(api: PublishedApi, allowed_ips: list[str]) -> None:
    _key, value, _app = ready_key(api, allowed_ips=allowed_ips)
    assert_allowed(eventually(lambda: api.get("/menu", key=value), 200))


def test_a_key_restricted_to_another_network_is_refused(api: PublishedApi) -> None:
    _key, value, _app = ready_key(api, allowed_ips=["10.0.0.0/8", "2001:db8::/32"])
    eventually(lambda: api.get("/menu", key=value), 403, "ip_not_allowed")
    # The gateway trusts no X-Forwarded-For hop: a forged one changes nothing.
    forged = api.get("/menu", key=value, headers={"x-forwarded-for": "10.1.2.3"})
    assert_denied(forged, 403, "ip_not_allowed")


@pytest.mark.parametrize(
    ("referer", "status", "code"),
    [
        ("https://shop.example.com/cart", 200, None),
        ("http://deep.shop.example.com:8443/x?y=1", 200, None),
        ("https://www.partner.org/checkout", 200, None),
        ("https://example.com.evil.io/", 403, "referer_not_allowed"),
        ("https://evilexample.com/", 403, "referer_not_allowed"),
        ("https://www.partner.org/other", 403, "referer_not_allowed"),
        (None, 403, "referer_not_allowed"),
    ],
    ids=["subdomain", "deeper-subdomain-port-ignored", "exact-path", "suffix-look-alike", "prefix-look-alike", "other-path", "no-referer"],
)
def test_referrer_restrictions(api: PublishedApi, referrer_key: str, referer: str | None, status: int, code: str | None) -> None:
    headers = {} if referer is None else {"referer": referer}
    response = api.get("/menu", key=referrer_key, headers=headers)
    if code is None:
        assert_allowed(response)
    else:
        assert_denied(response, status, code)


@pytest.fixture(scope="module")
def referrer_key(api: PublishedApi) -> str:
    _key, value, _app = ready_key(api, allowed_referrers=["*.example.com/*", "www.partner.org/checkout"])
    eventually(lambda: api.get("/menu", key=value, headers={"referer": "https://a.example.com/"}), 200)
    return value
