"""POST /v1/decisions:explain through the real mesh: admin_api asks an authz_server
replica, whose answer equals what Envoy's call through the gateway got, for each case
below; admins only, their organization only, and no credential in the answer or logs."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.cli.conftest import Deployment
from tests.integration.conftest import LiveMesh
from tests.integration.endpoints import http_post
from tests.integration.gateway import eventually, reason_code
from tests.integration.scenario import PublishedApi, create_api, ready_key

pytestmark = pytest.mark.integration


def _explain(live: LiveMesh, api: PublishedApi, subpath: str, headers: dict[str, str], *,
             token: str | None = None) -> httpx.Response:
    body = {"method": "GET", "path": api.base_path + subpath, "client_address": "127.0.0.1",
            "headers": [{"name": name, "value": value} for name, value in headers.items()]}
    if token is None:
        return live.admin.http.post("/v1/decisions:explain", json=body)
    return http_post(live.settings, f"{live.admin_url}/v1/decisions:explain", json=body,
                     headers={"authorization": f"Bearer {token}"}, timeout=10.0)


@pytest.fixture(scope="module")
def world(live: LiveMesh):
    api = create_api(live)
    _key, good, _app = ready_key(api)
    revoked, revoked_value, _ = ready_key(api)
    live.admin.revoke(revoked["id"])
    blocked_key, blocked_value, app = ready_key(api)
    subscription = [s for s in live.admin.call("GET", f"/v1/subscriptions?application_id={app['id']}")["subscriptions"]]
    live.admin.set_subscription_status(subscription[0]["id"], "BLOCKED")
    eventually(lambda: api.get("/menu", key=blocked_value), 403, "subscription_inactive")
    eventually(lambda: api.get("/menu", key=revoked_value), 401, "api_key_revoked")
    return api, {"good": good, "revoked": revoked_value, "blocked": blocked_value}


CASES = [
    ("allowed", "/menu", "good"),
    ("credential_missing", "/menu", None),
    ("api_key_invalid", "/menu", "invalid"),
    ("api_key_revoked", "/menu", "revoked"),
    ("subscription_inactive", "/menu", "blocked"),
    ("resource_not_found", "/no-such-resource", "good"),
]


@pytest.mark.parametrize("expected,subpath,key", CASES, ids=[case[0] for case in CASES])
def test_explain_equals_the_call_through_envoy(live: LiveMesh, world, expected, subpath, key) -> None:
    api, keys = world
    value = {"invalid": "pck_" + "Q" * 43}.get(key, keys.get(key)) if key else None
    headers = {"apikey": value} if value else {}
    through_envoy = api.get(subpath, headers=headers)
    explained = _explain(live, api, subpath, headers)
    assert explained.status_code == 200, explained.text
    trace = explained.json()
    envoy_reason = reason_code(through_envoy) or "allowed"
    assert (trace["reason"], trace["http_status"]) == (envoy_reason, through_envoy.status_code) == (
        expected, through_envoy.status_code)
    assert trace["outcome"] == ("allow" if expected == "allowed" else "deny")
    assert trace["api"]["id"] == api.id and int(trace["revision"]) > 0 and trace["replica"]
    if value:
        assert value not in explained.text


def test_explain_is_for_admins_of_the_organization_only(live: LiveMesh, world) -> None:
    api, keys = world
    assert _explain(live, api, "/menu", {}, token="pca_not-a-token").status_code == 401
    from portcullis_shared.scopes import ADMIN_SCOPE
    from tests.integration.oauth import generate_key, resident_token

    name = "publisher-" + uuid.uuid4().hex[:8]
    live.admin.create_user(name, "correct horse battery staple", ["publisher"])
    application = live.admin.create_application("explain-" + uuid.uuid4().hex[:8], owner=name)
    # A first-party client's token with the admin API's scope acts as its owner, a
    # publisher: the refusal is the role's, not the token audience's (that is its own test).
    key = generate_key(live, application, settings={"grant_types": ["client_credentials"], "first_party": True})
    publisher = resident_token(live, key, scope=ADMIN_SCOPE)
    refused = _explain(live, api, "/menu", {}, token=publisher)
    assert refused.status_code == 403, refused.text


def test_explain_writes_no_credential_to_any_log(live: LiveMesh, world) -> None:
    api, keys = world
    assert _explain(live, api, "/menu", {"apikey": keys["good"]}).json()["reason"] == "allowed"
    logs = live.settings.data_dir / "logs"
    for name in ("admin_api.log", "authz_server.log"):
        assert keys["good"] not in (logs / name).read_text(errors="replace")


def test_portcullis_decisions_explain(live: LiveMesh, world, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's `decisions explain` (derived from ExplainDecision) answers the trace."""
    api, keys = world
    cli = Deployment(live.settings, capsys)
    request = ("decisions", "explain", "--method", "GET", "--path", api.base_path + "/menu",
               "--client-address", "127.0.0.1", "--headers", json.dumps([{"name": "apikey", "value": keys["revoked"]}]))
    trace = cli.ok(*request)
    assert (trace["outcome"], trace["reason"], trace["http_status"]) == ("deny", "api_key_revoked", 401)
    assert trace["api"]["id"] == api.id and keys["revoked"] not in json.dumps(trace)
    table = cli.run(*request)
    assert table.code == 0 and "api_key_revoked" in table.out and keys["revoked"] not in table.out
    from_file = cli.run("decisions", "explain", "-f", "-", "-o", "json",
                        stdin=json.dumps({"method": "GET", "path": api.base_path + "/menu",
                                          "headers": [{"name": "apikey", "value": keys["good"]}]}))
    assert json.loads(from_file.out)["reason"] == "allowed", from_file.err
    refused = cli.run("--token", "pca_not-a-token", *request, token=False)
    assert refused.code == 1 and "401" in refused.err and refused.out == ""
