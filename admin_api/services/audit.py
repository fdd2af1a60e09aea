"""AuditService: admins read their own organization's audit records, oldest first,
filtered by time, subject and target, in pages."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from admin_api.access.caller import Caller
from admin_api.db.audit_models import AuditRecord
from admin_api.errors import InvalidArgument
from admin_api.services import paging
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import audit_pb2 as pb


def audit_record_pb(row: AuditRecord) -> pb.AuditRecord:
    time = Timestamp()
    time.FromDatetime(row.created_at)
    return pb.AuditRecord(id=row.id, organization_id=row.organization_id, time=time, subject=row.subject,
                          roles=list(row.roles), credential_kind=row.credential, method=row.method,
                          target_kind=row.target_kind, target_id=row.target_id,
                          outcome=pb.AuditRecord.Outcome.Value(row.outcome), detail=row.detail)


def list_audit_records(store: Store, request: pb.ListAuditRecordsRequest,
                       caller: Caller) -> pb.ListAuditRecordsResponse:
    size = paging.page_size(request.page_size)
    start = _time(request, "start_time")
    end = _time(request, "end_time")
    if start is not None and end is not None and end <= start:
        raise InvalidArgument("end_time must be after start_time", field="end_time")
    statement = select(AuditRecord).where(AuditRecord.organization_id == caller.organization_id)
    if start is not None:
        statement = statement.where(AuditRecord.created_at >= start)
    if end is not None:
        statement = statement.where(AuditRecord.created_at < end)
    for name in ("subject", "target_kind", "target_id"):
        value = getattr(request, name)
        if value:
            statement = statement.where(getattr(AuditRecord, name) == value)
    filters = ["audit", caller.organization_id, start, end, request.subject, request.target_kind, request.target_id]
    with store.read() as session:
        rows, token = paging.paginate(session, statement, AuditRecord, size=size, token=request.page_token,
                                      filters=filters)
        return pb.ListAuditRecordsResponse(records=[audit_record_pb(row) for row in rows], next_page_token=token)


def _time(request: pb.ListAuditRecordsRequest, field: str) -> datetime | None:
    if not request.HasField(field):
        return None
    value: Timestamp = getattr(request, field)
    try:
        return value.ToDatetime(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} is not a valid time", field=field) from None
