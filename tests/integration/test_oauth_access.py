"""After the token: subscription (consumer key -> application and key environment),
resource scopes (at least one of the resource's scopes, RFC 6750 insufficient_scope),
and sandbox keys routed to the sandbox backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import LiveMesh
from tests.fake_idp import FakeIdp
from tests.integration.gateway import assert_allowed, eventually
from tests.integration.oauth import (
    assert_insufficient_scope,
    assert_token_denied,
    call,
    client_credentials,
    generate_key,
    mapped_client,
    oauth_api,
    resident_token,
    subscribed_app,
)
from tests.integration.scenario import unique

pytestmark = pytest.mark.integration


def test_a_resident_token_without_a_subscription_is_refused(live: LiveMesh) -> None:
    api = oauth_api(live)
    app = live.admin.create_application(unique("unsubscribed"))
    token = resident_token(live, generate_key(live, app))
    response = eventually(lambda: call(api, token), 403, "subscription_missing")
    assert_token_denied(response, 403, "subscription_missing")
    # Subscribing lets the same token in.
    live.admin.subscribe(app["id"], api.id)
    assert_allowed(eventually(lambda: call(api, token), 200))


def test_an_external_token_without_a_subscription_is_refused(live: LiveMesh, fake_idp: FakeIdp, external_km: dict[str, Any]) -> None:
    api = oauth_api(live)
    app = live.admin.create_application(unique("unsubscribed"))
    token = fake_idp.access_token(mapped_client(live, fake_idp, external_km, app))
    eventually(lambda: call(api, token), 403, "subscription_missing")


def test_an_inactive_subscription_refuses_tokens_too(live: LiveMesh) -> None:
    api = oauth_api(live)
    app = live.admin.create_application(unique("blocked"))
    subscription = live.admin.subscribe(app["id"], api.id)
    token = resident_token(live, generate_key(live, app))
    eventually(lambda: call(api, token), 200)
    live.admin.set_subscription_status(subscription["id"], "BLOCKED")
    eventually(lambda: call(api, token), 403, "subscription_inactive")


@pytest.fixture(scope="module")
def scoped(live: LiveMesh) -> dict[str, Any]:
    """An API whose /menu needs `<read>` or `<admin>`; `/echo` needs no scope. A user
    entitled to `<read>` by a role, and one without roles."""
    role = unique("reader")
    read = live.admin.create_scope(unique("menu:read"), [role])["name"]
    admin_scope = live.admin.create_scope(unique("menu:admin"), [unique("chef")])["name"]
    reader = live.admin.create_user(unique("reader"), "correct horse battery", [role])
    nobody = live.admin.create_user(unique("nobody"), "correct horse battery", [])
    resources = [
        {"method": "GET", "path": "/menu", "scopes": [read, admin_scope]},
        {"method": "GET", "path": "/echo"},
    ]
    api = oauth_api(live, resources=resources)
    return {"api": api, "read": read, "admin": admin_scope, "reader": reader, "nobody": nobody}


def test_a_token_with_one_of_the_resource_scopes_is_accepted(live: LiveMesh, scoped: dict[str, Any]) -> None:
    api = scoped["api"]
    key = generate_key(live, subscribed_app(live, api, owner=scoped["reader"]["username"]))
    answer = client_credentials(live, key, scope=scoped["read"])
    assert scoped["read"] in answer.get("scope", "").split()
    assert_allowed(eventually(lambda: call(api, answer["access_token"]), 200))


def test_a_token_without_the_resource_scopes_is_refused(live: LiveMesh, scoped: dict[str, Any]) -> None:
    api = scoped["api"]
    key = generate_key(live, subscribed_app(live, api, owner=scoped["reader"]["username"]))
    token = resident_token(live, key)  # no scope asked for
    response = eventually(lambda: call(api, token), 403, "insufficient_scope")
    assert_insufficient_scope(response, [scoped["read"], scoped["admin"]])
    # A resource without scopes needs none.
    assert_allowed(call(api, token, "/echo"))


def test_a_scope_the_owner_is_not_entitled_to_is_not_granted(live: LiveMesh, scoped: dict[str, Any]) -> None:
    api = scoped["api"]
    key = generate_key(live, subscribed_app(live, api, owner=scoped["nobody"]["username"]))
    answer = client_credentials(live, key, scope=scoped["read"])
    assert scoped["read"] not in answer.get("scope", "").split()
    response = eventually(lambda: call(api, answer["access_token"]), 403, "insufficient_scope")
    assert_insufficient_scope(response, [scoped["read"], scoped["admin"]])


def test_external_scopes_from_the_mapped_array_claim(live: LiveMesh, fake_idp: FakeIdp, external_km: dict[str, Any],
                                                     scoped: dict[str, Any]) -> None:
    api = scoped["api"]
    client = mapped_client(live, fake_idp, external_km, subscribed_app(live, api))
    assert_allowed(eventually(lambda: call(api, fake_idp.access_token(client, ["unrelated", scoped["admin"]])), 200))
    response = call(api, fake_idp.access_token(client, ["unrelated"]))
    assert_insufficient_scope(response, [scoped["read"], scoped["admin"]])


def test_a_resident_sandbox_key_reaches_the_sandbox_backend(live: LiveMesh) -> None:
    api = oauth_api(live)
    app = subscribed_app(live, api)
    sandbox = resident_token(live, generate_key(live, app, environment="SANDBOX"))
    production = resident_token(live, generate_key(live, app, environment="PRODUCTION"))
    response = eventually(lambda: call(api, sandbox, "/echo"), 200)
    assert_allowed(response, "sandbox")
    assert response.json()["environment"] == "sandbox"
    assert_allowed(call(api, production, "/echo"), "production")


def test_an_external_sandbox_key_reaches_the_sandbox_backend(live: LiveMesh, fake_idp: FakeIdp, external_km: dict[str, Any]) -> None:
    api = oauth_api(live)
    app = subscribed_app(live, api)
    client = mapped_client(live, fake_idp, external_km, app, environment="SANDBOX")
    assert_allowed(eventually(lambda: call(api, fake_idp.access_token(client), "/echo"), 200), "sandbox")


def test_a_sandbox_token_on_an_api_without_a_sandbox_endpoint_is_refused(live: LiveMesh) -> None:
    api = oauth_api(live, sandbox_endpoint="")
    app = subscribed_app(live, api)
    token = resident_token(live, generate_key(live, app, environment="SANDBOX"))
    eventually(lambda: call(api, token), 403, "environment_unavailable")
