"""Per-API enforcement DRY_RUN through Envoy: what ENFORCE denies reaches the backend
(credentials stripped), is counted as would_deny, carries the would-be reason in Envoy's
access log, and the switch itself is audited."""

from __future__ import annotations

import pytest

from tests.hostile.raw_http import access_log_entries
from tests.integration.conftest import LiveMesh
from tests.integration.gateway import eventually, wait_until
from tests.integration.metrics_scrape import authz_metrics_url, scrape, value
from tests.integration.scenario import create_api

pytestmark = pytest.mark.integration


def test_dry_run_allows_counts_and_logs_what_enforce_denies(live: LiveMesh) -> None:
    api = create_api(live)
    assert api.api["enforcement"] == "ENFORCE"
    eventually(lambda: api.get("/echo"), 401, "credential_missing")
    updated = live.admin.call("PATCH", f"/v1/apis/{api.id}", {"enforcement": "DRY_RUN"})
    assert updated["enforcement"] == "DRY_RUN"
    label = f"{api.api['name']}/{api.api['version']}"
    eventually(lambda: api.get("/echo", key="pck_" + "Z" * 43), 200)
    _, before = scrape(authz_metrics_url(live))

    through = api.get("/echo", key="pck_" + "Z" * 43)
    assert through.status_code == 200, through.text
    seen = through.json()
    assert "apikey" not in {name.lower() for name in seen.get("headers", {})}, "the key reached the backend"
    assert api.get("/echo").status_code == 200   # credential_missing, let through

    _, after = scrape(authz_metrics_url(live))
    for reason in ("api_key_invalid", "credential_missing"):
        delta = (value(after, "portcullis_decisions_total", outcome="would_deny", reason=reason, api=label)
                 - value(before, "portcullis_decisions_total", outcome="would_deny", reason=reason, api=label))
        assert delta == 1, reason

    def logged() -> list[dict]:
        return [e for e in access_log_entries(live.mesh["envoy"].log_path)
                if e.get("api_id") == api.id and e.get("outcome") == "would_deny"]

    wait_until(lambda: {e.get("reason") for e in logged()} >= {"api_key_invalid", "credential_missing"},
               "the would-be reasons in Envoy's access log", timeout=5.0)

    records = live.admin.call("GET", f"/v1/audit-records?target_kind=api&target_id={api.id}")["records"]
    assert any(r["method"] == "portcullis.admin.v1.ApiService/UpdateApi" and r["outcome"] == "SUCCEEDED"
               for r in records)
    live.admin.call("PATCH", f"/v1/apis/{api.id}", {"enforcement": "ENFORCE"})
    eventually(lambda: api.get("/echo"), 401, "credential_missing")
