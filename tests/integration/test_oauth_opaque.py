"""Opaque (reference) tokens through Envoy, validated by RFC 7662 introspection: the
resident key manager's `pct_` tokens and the fake IdP's `fidp_` tokens (its key
manager's token_format_pattern); valid, revoked, expired, and an introspection endpoint
that fails."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

from tests.integration.conftest import LiveMesh
from tests.fake_idp import FakeIdp
from tests.integration.gateway import assert_allowed, assert_denied, eventually
from tests.integration.oauth import (
    AppKey,
    assert_token_denied,
    call,
    generate_key,
    mapped_client,
    oauth_api,
    resident_token,
    revoke,
    subscribed_app,
)
from tests.integration.scenario import PublishedApi

pytestmark = pytest.mark.integration

RESIDENT_OPAQUE = re.compile(r"^pct_[A-Za-z0-9_-]{43}$")


@pytest.fixture(scope="module")
def api(live: LiveMesh, external_km: dict[str, Any]) -> PublishedApi:
    return oauth_api(live)


@pytest.fixture(scope="module")
def reference_key(live: LiveMesh, api: PublishedApi) -> AppKey:
    return generate_key(live, subscribed_app(live, api), settings={"token_type": "REFERENCE"})


@pytest.fixture(scope="module")
def idp_client(live: LiveMesh, fake_idp: FakeIdp, external_km: dict[str, Any], api: PublishedApi) -> str:
    return mapped_client(live, fake_idp, external_km, subscribed_app(live, api))


def test_a_resident_reference_token_is_accepted(live: LiveMesh, api: PublishedApi, reference_key: AppKey) -> None:
    token = resident_token(live, reference_key)
    assert RESIDENT_OPAQUE.fullmatch(token), "resident reference tokens are pct_ + 43 characters"
    assert_allowed(eventually(lambda: call(api, token), 200))


def test_a_resident_reference_token_revoked_by_rfc_7009_is_inactive(live: LiveMesh, api: PublishedApi, reference_key: AppKey) -> None:
    eventually(lambda: call(api, resident_token(live, reference_key)), 200)
    token = resident_token(live, reference_key)
    revoke(live, reference_key, token)
    # Introspection says inactive; once the revocation has come through the sync stream
    # (milliseconds), authz_server says so without asking.
    answer = call(api, token)
    code = answer.json().get("code") if answer.status_code == 401 else None
    assert code in ("token_inactive", "token_revoked"), (answer.status_code, answer.text)
    assert_token_denied(answer, 401, code)


def test_a_made_up_resident_shaped_token_is_inactive(api: PublishedApi) -> None:
    assert_token_denied(call(api, "pct_" + "A" * 43), 401, "token_inactive")


def test_a_fake_idp_opaque_token_is_accepted(api: PublishedApi, fake_idp: FakeIdp, idp_client: str) -> None:
    token = fake_idp.opaque_token(idp_client)
    assert_allowed(eventually(lambda: call(api, token), 200))


def test_a_fake_idp_opaque_token_revoked_at_the_idp_is_inactive(api: PublishedApi, fake_idp: FakeIdp, idp_client: str) -> None:
    eventually(lambda: call(api, fake_idp.opaque_token(idp_client)), 200)
    token = fake_idp.opaque_token(idp_client)
    fake_idp.revoke(token)
    assert_token_denied(call(api, token), 401, "token_inactive")


def test_an_expired_fake_idp_opaque_token_is_inactive(api: PublishedApi, fake_idp: FakeIdp, idp_client: str) -> None:
    eventually(lambda: call(api, fake_idp.opaque_token(idp_client)), 200)
    assert_token_denied(call(api, fake_idp.opaque_token(idp_client, lifetime=-1)), 401, "token_inactive")


def test_introspection_calls_carry_the_configured_client(api: PublishedApi, fake_idp: FakeIdp, idp_client: str) -> None:
    before = len(fake_idp.introspections)
    eventually(lambda: call(api, fake_idp.opaque_token(idp_client)), 200)
    calls = fake_idp.introspections[before:]
    assert calls, "authz_server never called the IdP's introspection endpoint"
    assert all(request.headers.get("authorization", "").startswith("Basic ") for request in calls)


@pytest.fixture
def failing_introspection(fake_idp: FakeIdp) -> Iterator[FakeIdp]:
    yield fake_idp
    fake_idp.introspection_mode = "normal"


@pytest.mark.parametrize("mode", ["error", "garbage"])
def test_an_introspection_failure_is_never_an_allow(api: PublishedApi, failing_introspection: FakeIdp, idp_client: str, mode: str) -> None:
    failing_introspection.introspection_mode = mode  # type: ignore[assignment]
    token = failing_introspection.opaque_token(idp_client)
    assert_denied(call(api, token), 503, "key_manager_unavailable")
    # A failure is not cached as a success, nor as a failure once the IdP is back.
    failing_introspection.introspection_mode = "normal"
    assert_allowed(eventually(lambda: call(api, token), 200))


def test_a_slow_introspection_is_never_an_allow(api: PublishedApi, failing_introspection: FakeIdp, idp_client: str) -> None:
    failing_introspection.introspection_mode = "slow"
    failing_introspection.slow_seconds = 8.0
    token = failing_introspection.opaque_token(idp_client)
    # The session mesh's introspection timeout (0.3 s) is under Envoy's ext_authz timeout.
    assert_denied(call(api, token), 503, "key_manager_unavailable")


def test_a_revoked_resident_reference_token_is_refused_at_once_despite_the_introspection_cache(
        live: LiveMesh, api: PublishedApi, reference_key: AppKey) -> None:
    """Issue 18, item 5: the token is used first (authz_server caches its "active"
    introspection answer for up to 60 s), then revoked: the revocation reaches authz_server
    through the sync stream by the token's digest, and the gateway refuses the token within
    the propagation wait, long before the cache would expire."""
    token = resident_token(live, reference_key)
    assert_allowed(eventually(lambda: call(api, token), 200))
    assert_allowed(call(api, token))   # now answered from the introspection cache
    revoke(live, reference_key, token)
    assert_token_denied(eventually(lambda: call(api, token), 401, "token_revoked"), 401, "token_revoked")
