"""The Grafana dashboard and the Prometheus scrape configuration in ops/ name only
metrics the services export (a renamed metric would leave a panel empty)."""

from __future__ import annotations

import json
import re

from authz_server.metrics.exposition import COUNTERS, GAUGES, HISTOGRAMS
from portcullis_shared.settings import REPO_ROOT, MeshSettings

ADMIN = {"portcullis_admin_rpcs_total", "portcullis_admin_rpc_duration_seconds", "portcullis_admin_audit_records_total",
         "portcullis_admin_oauth2_token_requests_total", "portcullis_admin_change_log_revision",
         "portcullis_admin_watch_streams"}


def _exported() -> set[str]:
    names = set(COUNTERS) | set(GAUGES) | {"portcullis_authz_worker_up"} | ADMIN
    for name in HISTOGRAMS:
        names |= {name + "_bucket", name + "_sum", name + "_count"}
    names |= {name + "_bucket" for name in ADMIN if name.endswith("_seconds")}
    return names


def test_every_dashboard_query_names_an_exported_metric() -> None:
    dashboard = json.loads((REPO_ROOT / "ops" / "grafana" / "portcullis-dashboard.json").read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"portcullis_[a-z0-9_]+", target["expr"])}
    assert used and used <= _exported(), used - _exported()
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("reason", "latency", "staleness", "throttl", "key managers"):
        assert topic in titles


def test_the_scrape_config_targets_the_default_ports() -> None:
    text = (REPO_ROOT / "ops" / "prometheus" / "prometheus.yml").read_text()
    defaults = MeshSettings()
    for port in (defaults.authz_metrics_port, defaults.admin_rest_port, defaults.envoy_admin_port):
        assert f"127.0.0.1:{port}" in text
