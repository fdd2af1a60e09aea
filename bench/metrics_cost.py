"""What counting one decision costs, in process CPU: authz_server's recorder (plain ints)
against prometheus-client's Counter and Histogram, in-process and in multiprocess mode
(the two ways one scrape target could cover several worker processes).

Each variant runs in its own interpreter (multiprocess mode must be chosen before
prometheus-client is imported). The through-the-server figure is the direct part's
`*_metrics_off` rows next to their `*_metrics_on` twins.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from typing import Any

CALLS = 200_000

_PROGRAM = r"""
import json, os, sys, time
variant, calls = sys.argv[1], int(sys.argv[2])
labels = ("deny", "api_key_invalid", "PizzaShackAPI/1.0.0", "api_key")
if variant == "recorder":
    from authz_server.metrics.recorder import ProcessMetrics
    recorder = ProcessMetrics()
    def record(seconds):
        recorder.decision(*labels, seconds)
else:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from authz_server.metrics.recorder import DECISION_BUCKETS
    registry = CollectorRegistry()
    counter = Counter("d", "d", ["outcome", "reason", "api", "credential"], registry=registry)
    histogram = Histogram("s", "s", registry=registry, buckets=DECISION_BUCKETS)
    def record(seconds):
        counter.labels(*labels).inc()
        histogram.observe(seconds)
started = time.process_time()
for _ in range(calls):
    record(0.00004)
print(json.dumps((time.process_time() - started) / calls * 1e6))
"""


def run(calls: int = CALLS) -> dict[str, Any]:
    figures: dict[str, Any] = {"calls": calls}
    for variant in ("recorder", "prometheus_client", "prometheus_client_multiprocess"):
        with tempfile.TemporaryDirectory(prefix="portcullis-mp-") as directory:
            env = None
            if variant.endswith("multiprocess"):
                import os

                env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=directory)
            out = subprocess.run([sys.executable, "-c", _PROGRAM, variant.split("_multiprocess")[0]
                                  if variant != "recorder" else "recorder", str(calls)],
                                 check=True, capture_output=True, text=True, env=env)
            figures[f"{variant}_us_per_decision"] = round(json.loads(out.stdout), 3)
    return figures
