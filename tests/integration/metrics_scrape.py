"""Scraping a Prometheus /metrics page the way Prometheus does (no credential)."""

from __future__ import annotations

import ssl

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration import endpoints

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, *, verify: ssl.SSLContext | bool = True) -> tuple[str, Samples]:
    """`verify`: for admin_api's /metrics, on its REST port (TLS with the mesh on TLS)."""
    response = httpx.get(url, timeout=5.0, trust_env=False, verify=verify)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (sample, have), v in samples.items() if sample == name and wanted <= have)


def authz_metrics_url(live) -> str:
    """authz_server's metrics port: plaintext on loopback in every mode."""
    return endpoints.authz_metrics_url(live.settings)


def admin_metrics_url(live) -> str:
    """admin_api's /metrics, on its REST port: scrape it with verify=client_verify(...)."""
    return f"{endpoints.admin_url(live.settings)}/metrics"


def wait_every_worker_synced(live, *, timeout: float = 15.0) -> None:
    """Until every authz_server worker has applied admin_api's latest change (its
    `portcullis_policy_revision` at least the change log's): one worker's answer through
    the gateway says nothing of the others, which follow their own Watch streams."""
    import time

    _, admin = scrape(admin_metrics_url(live), verify=endpoints.client_verify(live.settings))
    wanted = value(admin, "portcullis_admin_change_log_revision")
    deadline = time.monotonic() + timeout
    while True:
        _, samples = scrape(authz_metrics_url(live))
        revisions = {dict(labels)["worker"]: v for (name, labels), v in samples.items()
                     if name == "portcullis_policy_revision"}
        if revisions and min(revisions.values()) >= wanted:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"workers' revisions {revisions} did not reach the change log's {wanted}")
        time.sleep(0.05)
