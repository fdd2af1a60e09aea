"""The scrape target: GET /metrics (Prometheus text format) on host:port, no credential.

It exposes counts, reason codes, API names and key manager names: never a key, a token or
a secret (the recorder never sees one).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from authz_server.metrics.exposition import FiguresCollector
from authz_server.metrics.merge import Figures, Merger
from authz_server.metrics.snapshot import Snapshot

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:   # one line per scrape is noise
        pass


class MetricsServer:
    def __init__(self, host: str, port: int, figures: Callable[[], Figures]) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FiguresCollector(figures))
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != METRICS_PATH:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found: the metrics are at /metrics\n"]
            return metrics_app(environ, start_response)

        self._httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2.0)


def serve_metrics(host: str, port: int, sources: Callable[[], Iterable[tuple[int, Snapshot | None]]],
                  *, max_apis: int) -> MetricsServer:
    """Start the scrape target; `sources()` gives each worker's snapshot on every scrape."""
    merger = Merger(max_apis=max_apis)
    lock = threading.Lock()   # the merger carries state between scrapes

    def figures() -> Figures:
        with lock:
            return merger.merge(sources())

    server = MetricsServer(host, port, figures).start()
    log.info("metrics on http://%s:%d%s", host, server.port, METRICS_PATH)
    return server
