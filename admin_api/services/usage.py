"""Usage per application and API: the counts authz_server processes report
(PolicySync.ReportUsage) and GetApplicationUsage, which sums them.

Each process reports the cumulative count of every (hour, application, API, outcome,
reason) it changed since its last report, under a reporter name unique to the process
incarnation; a row keeps the highest count a reporter sent, so a report taken twice, or
late, counts once. The figures of an application are the sum over reporters: every
worker of every replica. Rows older than RETENTION_HOURS are pruned with each report.
Counts of applications that do not exist (deleted since) are dropped; every row carries
its application's organization, and a read names an application the caller may see
(a subscriber: their own), like GetApplication.

Not in the change log (replicas never need it) and not audited (a report is not a change
by a person; a read is a read).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import delete, func, select

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.db.usage_models import UsageCount
from admin_api.errors import InvalidArgument
from admin_api.services import apis, ownership
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

HOUR = 3600
MAX_HOURS = 24
RETENTION_HOURS = 25
MAX_COUNTS_PER_REPORT = 20_000
OUTCOMES = ("allow", "deny", "would_deny")
_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_IN_CHUNK = 500


def _hour(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds // HOUR * HOUR, timezone.utc)


def _check(count: sync_pb2.UsageCount, index: int, now: int) -> None:
    where = f"counts[{index}]"
    if count.outcome not in OUTCOMES or not _REASON.fullmatch(count.reason):
        raise InvalidArgument(f"{where}: outcome one of {', '.join(OUTCOMES)} and a reason code", field=where)
    if not _ID.fullmatch(count.application_id) or not _ID.fullmatch(count.api_id):
        raise InvalidArgument(f"{where}: application_id and api_id are ids", field=where)
    if count.count < 0 or count.hour_start % HOUR or not now - RETENTION_HOURS * HOUR < count.hour_start <= now + HOUR:
        raise InvalidArgument(f"{where}: a count of 0 or more in an hour of the last {RETENTION_HOURS}", field=where)


def record_report(store: Store, report: sync_pb2.UsageReport) -> int:
    """Keep a reporter's counts; answers how many were kept (those of known applications)."""
    if len(report.counts) > MAX_COUNTS_PER_REPORT:
        raise InvalidArgument(f"at most {MAX_COUNTS_PER_REPORT} counts per report", field="counts")
    now = int(utcnow().timestamp())
    for index, count in enumerate(report.counts):
        _check(count, index, now)
    reporter = report.reporter.strip()[:200] or "unnamed"
    kept = 0
    with store.write() as writer:
        session = writer.session
        wanted = sorted({count.application_id for count in report.counts})
        organizations: dict[str, str] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            organizations.update(session.execute(
                select(models.Application.id, models.Application.organization_id)
                .where(models.Application.id.in_(wanted[start:start + _IN_CHUNK]))).all())
        stamp = utcnow()
        for count in report.counts:
            organization_id = organizations.get(count.application_id)
            if organization_id is None:
                continue
            key = (reporter, _hour(count.hour_start), count.application_id, count.api_id, count.outcome, count.reason)
            row = session.get(UsageCount, key)
            if row is None:
                session.add(UsageCount(reporter=key[0], hour=key[1], application_id=key[2], api_id=key[3],
                                       outcome=key[4], reason=key[5], organization_id=organization_id,
                                       count=count.count, updated_at=stamp))
            elif count.count > row.count:
                row.count, row.updated_at = count.count, stamp
            kept += 1
        session.execute(delete(UsageCount).where(UsageCount.hour < _hour(now - RETENTION_HOURS * HOUR)))
    return kept


def get_application_usage(store: Store, request: admin_pb2.GetApplicationUsageRequest,
                          caller: Caller) -> admin_pb2.ApplicationUsage:
    hours = request.hours or MAX_HOURS
    if not 1 <= hours <= MAX_HOURS:
        raise InvalidArgument(f"hours: 1 to {MAX_HOURS}", field="hours")
    since = _hour(int(utcnow().timestamp())) - timedelta(hours=hours - 1)
    with store.read() as session:
        application = ownership.application(session, request.id, caller)
        sums = session.execute(
            select(UsageCount.api_id, UsageCount.outcome, UsageCount.reason, func.sum(UsageCount.count))
            .where(UsageCount.application_id == application.id,
                   UsageCount.organization_id == application.organization_id, UsageCount.hour >= since)
            .group_by(UsageCount.api_id, UsageCount.outcome, UsageCount.reason)).all()
        api_ids = sorted({api_id for api_id, _, _, _ in sums})
        known = {row.id: row for row in session.scalars(select(models.Api).where(
            models.Api.id.in_(api_ids), models.Api.organization_id == application.organization_id))}
        per_api: dict[str, admin_pb2.ApiUsage] = {}
        reasons: dict[str, dict[str, int]] = {}
        for api_id, outcome, reason, total in sums:
            usage = per_api.get(api_id)
            if usage is None:
                api = known.get(api_id)
                visible = api is not None and apis.may_see(caller, api)
                usage = per_api[api_id] = admin_pb2.ApiUsage(api_id=api_id, api_name=api.name if visible else "",
                                                             api_version=api.version if visible else "")
            total = int(total or 0)
            usage.calls += total
            if outcome == "allow":
                usage.allowed += total
            else:
                if outcome == "deny":
                    usage.denied += total
                else:
                    usage.would_deny += total
                by_reason = reasons.setdefault(api_id, {})
                by_reason[reason] = by_reason.get(reason, 0) + total
        for api_id, by_reason in reasons.items():
            per_api[api_id].denials.extend(admin_pb2.ReasonCount(reason=r, count=n) for r, n in
                                           sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))
    started = Timestamp()
    started.FromDatetime(since)
    return admin_pb2.ApplicationUsage(application_id=application.id, since=started, apis=sorted(
        per_api.values(), key=lambda usage: (-usage.calls, usage.api_name, usage.api_id)))
