"""admin_api's /healthz reads the real database (503 while it is gone, one log line per
change), /livez touches nothing, and /metrics counts RPCs, audit records and the
change-log revision — all without a credential and without any secret in the page."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from admin_api.app import create_admin_app
from admin_api.transports.rest import create_app
from portcullis_shared.settings import MeshSettings


@pytest.fixture
def admin(tmp_path: Path):
    app = create_admin_app(MeshSettings(data_dir=tmp_path), grpc_port=0)
    rest = create_app(app.dispatcher, health=app.check_database, metrics=app.metrics_registry())
    with TestClient(rest) as client:
        yield app, client
    app.db.dispose()


def _samples(text: str) -> dict:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, have), v in samples.items() if n == name and set(labels.items()) <= have)


def test_healthz_turns_503_while_the_database_is_gone_and_livez_stays_cheap(admin, caplog) -> None:
    app, client = admin
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    database = Path(app.settings.database_url.removeprefix("sqlite:///"))
    app.db.engine.dispose()
    os.replace(database, database.with_suffix(".away"))   # a new connection opens an empty file
    try:
        with caplog.at_level(logging.ERROR, logger="admin_api.transports.rest"):
            for _ in range(3):
                response = client.get("/healthz")
                assert response.status_code == 503
                assert response.json() == {"status": "unavailable", "database": "unavailable"}
        assert sum("does not answer" in r.getMessage() for r in caplog.records) == 1   # logged once
        assert client.get("/livez").json() == {"status": "ok"}
    finally:
        app.db.engine.dispose()
        database.unlink(missing_ok=True)
        os.replace(database.with_suffix(".away"), database)
    assert client.get("/healthz").status_code == 200


def test_metrics_count_rpcs_by_method_and_code_and_audit_records(admin) -> None:
    app, client = admin
    token = app.settings.admin_token_file.read_text().strip()
    auth = {"authorization": f"Bearer {token}"}
    before = _samples(client.get("/metrics").text)
    created = client.post("/v1/apis", headers=auth, json={
        "name": "Metered", "version": "1.0.0", "context": "/metered",
        "production_endpoint": "http://127.0.0.1:8091"})
    assert created.status_code == 201, created.text
    assert client.get("/v1/apis/no-such-api", headers=auth).status_code == 404
    page = client.get("/metrics")   # no credential
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    after = _samples(page.text)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    create, get = "portcullis.admin.v1.ApiService/CreateApi", "portcullis.admin.v1.ApiService/GetApi"
    assert delta("portcullis_admin_rpcs_total", method=create, code="OK") == 1
    assert delta("portcullis_admin_rpcs_total", method=get, code="NOT_FOUND") == 1
    assert delta("portcullis_admin_rpc_duration_seconds_count", method=create) == 1
    assert delta("portcullis_admin_audit_records_total", outcome="SUCCEEDED") == 1
    assert _value(after, "portcullis_admin_change_log_revision") == app.change_log_revision() > 0
    assert token not in page.text and app.settings.sync_token_file.read_text().strip() not in page.text
