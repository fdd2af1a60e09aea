"""Each deciding process reports its usage counts to admin_api (PolicySync.ReportUsage,
with the sync token, like Watch) every PORTCULLIS_USAGE_REPORT_SECONDS, and once more
when it stops.

Why a push from every process, and not admin_api asking: admin_api does not know the
replicas (they connect to it; explain asks one configured address), and every worker
counts its own calls, so each reports on its own and admin_api sums. Why admin_api keeps
them in its database: any admin_api replica answers, and the figures outlive the
processes that counted them. A report that fails is kept and sent with the next one; a
process killed without stopping loses what it counted since its last report (at most one
interval).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import grpc

from authz_server.usage.counter import UsageCounter
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc

log = logging.getLogger(__name__)

MAX_COUNTS_PER_REPORT = 20_000
TIMEOUT_SECONDS = 10.0


class UsageReporter:
    def __init__(self, counter: UsageCounter, targets: Sequence[str], token: Callable[[], str | None], *,
                 reporter: str, interval: float, credentials: grpc.ChannelCredentials | None = None) -> None:
        self._counter = counter
        self._targets = list(targets)
        self._target_index = 0
        self._token = token
        self._reporter = reporter
        self._interval = interval
        self._credentials = credentials
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.reports = 0    # accepted, for tests

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="usage-reporter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.report_once()   # what was counted since the last report

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.report_once()

    def _channel(self, target: str) -> grpc.Channel:
        if self._credentials is None:
            return grpc.insecure_channel(target)
        return grpc.secure_channel(target, self._credentials)

    def report_once(self) -> bool:
        """Send what changed; False (and kept for the next report) when it did not go through."""
        changed = self._counter.changed()
        if not changed:
            return True
        token = self._token()
        sent, kept = changed[:MAX_COUNTS_PER_REPORT], changed[MAX_COUNTS_PER_REPORT:]
        if kept:
            self._counter.unreport([key for key, _ in kept])
        report = sync_pb2.UsageReport(reporter=self._reporter, counts=[
            sync_pb2.UsageCount(hour_start=hour, application_id=application, api_id=api, outcome=outcome,
                                reason=reason, count=count)
            for (hour, application, api, outcome, reason), count in sent])
        target = self._targets[self._target_index]
        try:
            if token is None:
                raise ConnectionError("no sync token yet")
            with self._channel(target) as channel:
                sync_pb2_grpc.PolicySyncStub(channel).ReportUsage(
                    report, metadata=(("authorization", f"Bearer {token}"),), timeout=TIMEOUT_SECONDS)
        except (grpc.RpcError, ConnectionError) as exc:
            self._counter.unreport([key for key, _ in sent])
            self._target_index = (self._target_index + 1) % len(self._targets)
            detail = exc.details() if isinstance(exc, grpc.RpcError) else str(exc)   # type: ignore[union-attr]
            log.warning("usage report to %s failed (kept for the next one): %s", target, detail)
            return False
        self.reports += 1
        return True
