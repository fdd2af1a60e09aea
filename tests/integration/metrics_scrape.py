"""Scraping a Prometheus /metrics page the way Prometheus does (no credential)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[str, Samples]:
    response = httpx.get(url, timeout=5.0, trust_env=False)
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
    return f"http://{live.settings.host}:{live.settings.authz_metrics_port}/metrics"


def admin_metrics_url(live) -> str:
    return f"http://{live.settings.host}:{live.settings.admin_rest_port}/metrics"
