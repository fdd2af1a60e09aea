"""Usage per application and API through the real mesh: calls through Envoy, decided by
every authz_server worker, reported to admin_api and summed: GET
/v1/applications/{id}/usage counts each allowed call and each denial with its reason
exactly once (a revoked key's refusal too), and nothing for a credential that names no
application."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from tests.integration.conftest import LiveMesh
from tests.integration.gateway import eventually, reason_code, wait_until
from tests.integration.scenario import PublishedApi, create_api, ready_key

pytestmark = pytest.mark.integration

CALLS = 12
# The denials of this test whose credential names the application: counted. Every other
# answer names none (a key or route not known yet, someone's key): never counted.
COUNTED = {"ip_not_allowed", "api_key_revoked"}


def usage_of(live: LiveMesh, application_id: str) -> dict[str, Any]:
    answer = live.admin.call("GET", f"/v1/applications/{application_id}/usage?hours=1")
    return {row["api_id"]: row for row in answer.get("apis", [])}


class Tally:
    """What the test saw through Envoy, as usage should count it."""

    def __init__(self, api: PublishedApi) -> None:
        self.api = api
        self.allowed = 0
        self.denied: Counter[str] = Counter()

    def get(self, key: str) -> httpx.Response:
        response = self.api.get("/menu", key=key)
        if response.status_code == 200:
            self.allowed += 1
        elif reason_code(response) in COUNTED:
            self.denied[str(reason_code(response))] += 1
        return response


def test_calls_and_denials_of_an_application_are_counted_once(live: LiveMesh) -> None:
    api, other = create_api(live), create_api(live)
    seen = Tally(api)
    _, value, app = ready_key(api)
    eventually(lambda: seen.get(value), 200)
    for _ in range(CALLS):
        assert seen.get(value).status_code == 200
    # A key of the same application for a network the test is not on: 403 ip_not_allowed.
    _, elsewhere = api.new_key(application_id=app["id"], allowed_ips=["192.0.2.0/24"])
    eventually(lambda: seen.get(elsewhere), 403, "ip_not_allowed")
    for _ in range(3):
        assert seen.get(elsewhere).status_code == 403
    # A revoked key of the application: refused before it authenticates, still its call.
    revoked, gone = api.new_key(application_id=app["id"])
    eventually(lambda: seen.get(gone), 200)
    live.admin.call("POST", f"/v1/api-keys/{revoked['id']}/revoke")
    eventually(lambda: seen.get(gone), 401, "api_key_revoked")
    # Another application's calls to another API: its own figures, not these.
    _, other_value, other_app = ready_key(other)
    eventually(lambda: other.get("/menu", key=other_value), 200)
    # A key that is no one's: counted nowhere.
    for _ in range(5):
        assert api.get("/menu", key="pck_nobody").status_code == 401
    assert seen.allowed >= CALLS + 2 and seen.denied["ip_not_allowed"] == 4 and seen.denied["api_key_revoked"] >= 1

    def counted() -> bool:
        row = usage_of(live, app["id"]).get(api.id)
        return bool(row) and int(row["allowed"]) == seen.allowed and int(row["denied"]) == sum(seen.denied.values())
    wait_until(counted, f"usage of {app['id']}: {seen.allowed} allowed, {dict(seen.denied)} denied", timeout=20)
    row = usage_of(live, app["id"])[api.id]
    assert int(row["calls"]) == seen.allowed + sum(seen.denied.values())
    assert {d["reason"]: int(d["count"]) for d in row["denials"]} == dict(seen.denied)
    assert (row["api_name"], row["api_version"]) == (api.api["name"], "1.0.0")
    assert other.id not in usage_of(live, app["id"])
    wait_until(lambda: other.id in usage_of(live, other_app["id"]), "the other application's usage", timeout=20)
    assert api.id not in usage_of(live, other_app["id"])
