"""Usage counts in a deciding process: which application a decision counts for, per hour,
bounded, reported as cumulative values, kept when a report fails; and a real PolicySync
server taking them (the reporter's side of admin_api.services.usage)."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from authz_server.usage.counter import HOUR, RETENTION_HOURS, UsageCounter
from authz_server.usage.reporter import UsageReporter
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc

T0 = 1_800_000_000 // HOUR * HOUR


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_per_hour_and_only_changed_keys_are_reported() -> None:
    clock = Clock(T0 + 10)
    counter = UsageCounter(clock)
    counter.record("app", "api", "allow", "allowed")
    counter.record("app", "api", "allow", "allowed")
    counter.record("app", "api", "deny", "ip_not_allowed")
    counter.record("", "api", "deny", "api_key_invalid")   # no application: not counted
    assert counter.changed() == [((T0, "app", "api", "allow", "allowed"), 2),
                                 ((T0, "app", "api", "deny", "ip_not_allowed"), 1)]
    assert counter.changed() == []
    clock.now += HOUR
    counter.record("app", "api", "allow", "allowed")
    # Cumulative per key: the new hour has its own.
    assert counter.changed() == [((T0 + HOUR, "app", "api", "allow", "allowed"), 1)]
    counter.record("app", "api", "deny", "ip_not_allowed")
    assert counter.changed() == [((T0 + HOUR, "app", "api", "deny", "ip_not_allowed"), 1)]


def test_old_hours_are_dropped_and_new_keys_past_the_bound_are_not_counted() -> None:
    clock = Clock(T0)
    counter = UsageCounter(clock, max_keys=2)
    counter.record("a", "api", "allow", "allowed")
    counter.record("b", "api", "allow", "allowed")
    counter.record("c", "api", "allow", "allowed")
    assert counter.dropped == 1
    counter.record("a", "api", "allow", "allowed")   # a known key still counts
    assert [count for _, count in counter.changed()] == [2, 1]
    clock.now += RETENTION_HOURS * HOUR
    assert counter.changed() == []
    counter.record("c", "api", "allow", "allowed")   # room again
    assert counter.changed() == [((T0 + RETENTION_HOURS * HOUR, "c", "api", "allow", "allowed"), 1)]


class _Admin(sync_pb2_grpc.PolicySyncServicer):
    def __init__(self) -> None:
        self.reports: list[tuple[str, sync_pb2.UsageReport]] = []
        self.refuse = False

    def ReportUsage(self, request, context):  # noqa: N802
        if self.refuse:
            context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        self.reports.append((dict(context.invocation_metadata())["authorization"], request))
        return sync_pb2.UsageReportAck()


@pytest.fixture
def admin():
    servicer = _Admin()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    sync_pb2_grpc.add_PolicySyncServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


def test_reports_go_with_the_sync_token_and_a_failed_one_is_sent_again(admin) -> None:
    servicer, target = admin
    counter = UsageCounter(Clock(T0 + 5))
    reporter = UsageReporter(counter, [target], lambda: "sync-token", reporter="authz-server@h:1/worker-0",
                             interval=3600)
    assert reporter.report_once()          # nothing to say: nothing sent
    assert servicer.reports == []
    counter.record("app", "api", "allow", "allowed")
    servicer.refuse = True
    assert not reporter.report_once()
    counter.record("app", "api", "allow", "allowed")
    servicer.refuse = False
    assert reporter.report_once()
    ((authorization, report),) = servicer.reports
    assert authorization == "Bearer sync-token" and report.reporter == "authz-server@h:1/worker-0"
    assert [(c.hour_start, c.application_id, c.api_id, c.outcome, c.reason, c.count) for c in report.counts] == [
        (T0, "app", "api", "allow", "allowed", 2)]
    counter.record("app", "api", "deny", "subscription_not_found")
    reporter.stop()                        # the final report
    assert [c.reason for c in servicer.reports[-1][1].counts] == ["subscription_not_found"]


@pytest.mark.parametrize("headers, code, application", [
    ({"apikey": "pck_production-key-value"}, "allowed", "app-1"),
    ({"apikey": "pck_limited"}, "ip_not_allowed", "app-1"),     # denied after the key authenticated
    ({"apikey": "pck_revoked"}, "api_key_revoked", "app-1"),    # refused before: still the key's application
    ({"apikey": "pck_nobody"}, "api_key_invalid", ""),          # names no application: not counted
    ({}, "credential_missing", ""),
], ids=["allowed", "ip-refused", "revoked", "unknown-key", "no-credential"])
def test_the_application_a_decision_counts_for(headers: dict[str, str], code: str, application: str) -> None:
    from authz_server.check_servicer import usage_application
    from authz_server.pipeline import decide
    from authz_server.pipeline.decide import Trace
    from tests.authz_server.factories import NOW, index_of, make_key, make_request, pizza_world

    index = index_of(*pizza_world(), make_key("key-limited", "pck_limited", allowed_ips=["192.0.2.0/24"]),
                     make_key("key-revoked", "pck_revoked", revoked=True))
    trace = Trace()
    decision = decide(make_request(headers=headers), index, NOW, trace=trace)
    assert decision.code == code
    assert usage_application(decision, trace, index) == application
