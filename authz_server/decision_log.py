"""One structured line per decision: outcome, reason code, API, key, latency.

Never a key, a token or the query string (it may hold the key); the path only. The
consumer key (a public OAuth client id) is logged; the token itself never.
"""

from __future__ import annotations

import logging

from authz_server.denials import Denial
from authz_server.pipeline.context import Allow, RequestContext

log = logging.getLogger("authz_server.decision")


def log_decision(decision: Allow | Denial, request: RequestContext | None, latency_seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    if isinstance(decision, Allow):
        outcome, environment, application_id = "allow", decision.environment.value, decision.application_id
        kind, key_manager_id, consumer_key = decision.credential_kind, decision.key_manager_id, decision.consumer_key
    else:
        outcome, environment, application_id = "deny", "", ""
        kind = key_manager_id = consumer_key = ""
    log.info(
        "decision outcome=%s reason=%s api_id=%s api_key_id=%s application_id=%s environment=%s "
        "credential_kind=%s key_manager_id=%s consumer_key=%s method=%s path=%s request_id=%s latency_ms=%.3f",
        outcome,
        decision.code,
        decision.api_id or "-",
        decision.api_key_id or "-",
        application_id or "-",
        environment or "-",
        kind or "-",
        key_manager_id or "-",
        consumer_key or "-",
        request.method if request else "-",
        request.raw_path if request else "-",
        request.request_id or "-" if request else "-",
        latency_seconds * 1000.0,
    )
