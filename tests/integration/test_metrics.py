"""authz_server's /metrics after a known mix of calls through Envoy: one scrape target for
every worker, the right count per reason code, and no credential in or needed."""

from __future__ import annotations

import pytest

from tests.integration.conftest import LiveMesh
from tests.integration.gateway import eventually
from tests.integration.metrics_scrape import authz_metrics_url, scrape, value
from tests.integration.scenario import PublishedApi, create_api, ready_key

pytestmark = pytest.mark.integration

DECISIONS = "portcullis_decisions_total"


@pytest.fixture(scope="module")
def api(live: LiveMesh) -> PublishedApi:
    return create_api(live)


def _label(api: PublishedApi) -> str:
    return f"{api.api['name']}/{api.api['version']}"


def test_decision_counters_read_the_calls_made_per_reason(live: LiveMesh, api: PublishedApi) -> None:
    key, value_, _app = ready_key(api)
    revoked, revoked_value, _ = ready_key(api)
    eventually(lambda: api.get("/menu", key=value_), 200)
    live.admin.revoke(revoked["id"])
    eventually(lambda: api.get("/menu", key=revoked_value), 401, "api_key_revoked")
    _, before = scrape(authz_metrics_url(live))

    mix = {("allow", "allowed", "api_key"): 5, ("deny", "credential_missing", "none"): 3,
           ("deny", "api_key_invalid", "api_key"): 2, ("deny", "api_key_revoked", "api_key"): 4,
           ("deny", "resource_not_found", "none"): 1}
    for _ in range(5):
        assert api.get("/menu", key=value_).status_code == 200
    for _ in range(3):
        assert api.get("/menu").status_code == 401
    for _ in range(2):
        assert api.get("/menu", key="not-a-key-" + "x" * 20).status_code == 401
    for _ in range(4):
        assert api.get("/menu", key=revoked_value).status_code == 401
    assert api.get("/no-such-resource", key=value_).status_code == 404

    text, after = scrape(authz_metrics_url(live))
    label = _label(api)
    for (outcome, reason, credential), expected in mix.items():
        delta = (value(after, DECISIONS, outcome=outcome, reason=reason, api=label, credential=credential)
                 - value(before, DECISIONS, outcome=outcome, reason=reason, api=label, credential=credential))
        assert delta == expected, (outcome, reason, credential)
    total = value(after, DECISIONS, api=label) - value(before, DECISIONS, api=label)
    assert total == sum(mix.values())
    # The latency histogram counts every decision, of every API, once.
    assert value(after, "portcullis_decision_duration_seconds_count") >= value(before, DECISIONS) + total
    # No secret: neither the key values nor the deployment's tokens appear.
    for secret in (value_, revoked_value, live.settings.admin_token_file.read_text().strip(),
                   live.settings.sync_token_file.read_text().strip()):
        assert secret not in text


def test_one_target_covers_every_worker_and_reports_their_sync_state(live: LiveMesh) -> None:
    _, samples = scrape(authz_metrics_url(live))
    workers = {dict(labels)["worker"] for (name, labels), _v in samples.items() if name == "portcullis_authz_worker_up"}
    from authz_server.settings import worker_count
    import os

    expected = worker_count({k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")})
    assert workers == {str(index) for index in range(expected)}
    for worker in workers:
        assert value(samples, "portcullis_authz_worker_up", worker=worker) == 1
        assert value(samples, "portcullis_policy_ready", worker=worker) == 1
        assert value(samples, "portcullis_policy_revision", worker=worker) > 0
        assert value(samples, "portcullis_policy_sync_connected", worker=worker) == 1
        # Heartbeats every PORTCULLIS_SYNC_HEARTBEAT_SECONDS (5 s): never much older than that.
        assert 0 <= value(samples, "portcullis_policy_staleness_seconds", worker=worker) < 15
        assert value(samples, "portcullis_policy_snapshot_duration_seconds", worker=worker) > 0


def test_the_metrics_page_needs_no_credential_and_serves_only_metrics(live: LiveMesh) -> None:
    import httpx

    url = authz_metrics_url(live)
    assert httpx.get(url, timeout=5.0, trust_env=False).status_code == 200
    assert httpx.get(url.replace("/metrics", "/admin"), timeout=5.0, trust_env=False).status_code == 404



def test_admin_metrics_show_watch_streams_and_token_requests_without_credential(live: LiveMesh) -> None:
    from tests.integration.endpoints import client_verify, http_post
    from tests.integration.metrics_scrape import admin_metrics_url

    base, verify = live.admin_url, client_verify(live.settings)
    _, before = scrape(admin_metrics_url(live), verify=verify)
    refused = http_post(live.settings, base + "/oauth2/token", data={"grant_type": "client_credentials"},
                        auth=("no-such-client", "wrong"))
    assert refused.status_code == 401
    odd = http_post(live.settings, base + "/oauth2/token", data={"grant_type": "made-up-" + "x" * 50})
    assert odd.status_code in (400, 401)
    text, after = scrape(admin_metrics_url(live), verify=verify)
    name = "portcullis_admin_oauth2_token_requests_total"
    assert (value(after, name, grant_type="client_credentials", outcome="invalid_client")
            - value(before, name, grant_type="client_credentials", outcome="invalid_client")) == 1
    assert value(after, name, grant_type="other") - value(before, name, grant_type="other") == 1
    assert "made-up-" not in text   # a client's free text is never a label
    _, authz = scrape(authz_metrics_url(live))
    workers = sum(1 for (n, _l), _v in authz.items() if n == "portcullis_authz_worker_up")
    assert value(after, "portcullis_admin_watch_streams") >= workers   # each worker holds a Watch stream
    assert value(after, "portcullis_admin_change_log_revision") > 0
    assert live.settings.admin_token_file.read_text().strip() not in text
