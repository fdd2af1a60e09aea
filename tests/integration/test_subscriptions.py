"""Subscriptions through Envoy: required on a subscription-enabled API, their statuses,
production vs sandbox keys, and subscription-less APIs."""

from __future__ import annotations

import pytest

from tests.integration.conftest import LiveMesh
from tests.integration.gateway import assert_allowed, assert_denied, eventually
from tests.integration.scenario import PublishedApi, create_api, ready_key, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(live: LiveMesh) -> PublishedApi:
    return create_api(live)


def test_a_key_without_an_application_is_refused(api: PublishedApi) -> None:
    _key, value = api.new_key()
    eventually(lambda: api.get("/menu", key=value), 403, "api_key_not_associated")


def test_an_application_without_a_subscription_is_refused(api: PublishedApi) -> None:
    app = api.admin.create_application(unique("unsubscribed"))
    _key, value = api.new_key(application_id=app["id"])
    eventually(lambda: api.get("/menu", key=value), 403, "subscription_missing")


def test_associating_later_lets_the_key_in(api: PublishedApi) -> None:
    key, value = api.new_key()
    eventually(lambda: api.get("/menu", key=value), 403, "api_key_not_associated")
    app, _subscription = api.subscribed_app()
    api.admin.associate(key["id"], app["id"])
    assert_allowed(eventually(lambda: api.get("/menu", key=value), 200))


@pytest.mark.parametrize("status", ["BLOCKED", "ON_HOLD", "REJECTED"])
def test_an_inactive_subscription_is_refused(api: PublishedApi, status: str) -> None:
    app, subscription = api.subscribed_app()
    _key, value = api.new_key(application_id=app["id"])
    eventually(lambda: api.get("/menu", key=value), 200)
    api.admin.set_subscription_status(subscription["id"], status)
    eventually(lambda: api.get("/menu", key=value), 403, "subscription_inactive")
    api.admin.set_subscription_status(subscription["id"], "ACTIVE")
    eventually(lambda: api.get("/menu", key=value), 200)


def test_prod_only_blocked_refuses_production_and_serves_sandbox(api: PublishedApi) -> None:
    app, subscription = api.subscribed_app(status="PROD_ONLY_BLOCKED")
    _prod, prod_value = api.new_key(application_id=app["id"], environment="PRODUCTION")
    _sandbox, sandbox_value = api.new_key(application_id=app["id"], environment="SANDBOX")
    eventually(lambda: api.get("/menu", key=prod_value), 403, "subscription_production_blocked")
    response = eventually(lambda: api.get("/echo", key=sandbox_value), 200)
    assert_allowed(response, "sandbox")
    assert response.json()["environment"] == "sandbox"
    assert subscription["status"] == "PROD_ONLY_BLOCKED"


def test_a_sandbox_key_reaches_the_sandbox_backend(api: PublishedApi) -> None:
    _key, value, _app = ready_key(api, environment="SANDBOX")
    response = eventually(lambda: api.get("/echo", key=value), 200)
    assert_allowed(response, "sandbox")
    echo = response.json()
    assert echo["environment"] == "sandbox"
    assert "apikey" not in echo["headers"]
    # The menu from the sandbox instance too.
    assert_allowed(api.get("/menu", key=value, in_query=True), "sandbox")


def test_a_production_key_reaches_the_production_backend(api: PublishedApi) -> None:
    _key, value, _app = ready_key(api, environment="PRODUCTION")
    response = eventually(lambda: api.get("/echo", key=value), 200)
    assert_allowed(response, "production")
    assert response.json()["environment"] == "production"


def test_an_api_without_a_sandbox_endpoint_refuses_sandbox_keys(live: LiveMesh) -> None:
    no_sandbox = create_api(live, subscription_less=True, sandbox_endpoint="")
    _key, value = no_sandbox.new_key(environment="SANDBOX")
    eventually(lambda: no_sandbox.get("/menu", key=value), 403, "environment_unavailable")


def test_a_subscription_less_api_needs_no_application(live: LiveMesh) -> None:
    open_api = create_api(live, subscription_less=True)
    _key, value = open_api.new_key()
    assert_allowed(eventually(lambda: open_api.get("/menu", key=value), 200))
    # ... but still a key.
    assert_denied(open_api.get("/menu"), 401, "credential_missing")
