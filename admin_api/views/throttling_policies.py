"""A throttling policy's admin view, which is also its sync record (a policy holds no secret)."""

from __future__ import annotations

from admin_api.db.throttling_models import ThrottlingPolicy
from admin_api.views.timestamps import set_timestamp
from portcullis.admin.v1 import throttling_pb2

_Policy = throttling_pb2.ThrottlingPolicy


def throttling_policy_pb(row: ThrottlingPolicy) -> throttling_pb2.ThrottlingPolicy:
    message = _Policy(
        id=row.id, organization_id=row.organization_id, name=row.name, kind=_Policy.Kind.Value(row.kind),
        request_count=row.request_count, unit=_Policy.TimeUnit.Value(row.unit),
        burst_request_count=row.burst_request_count, burst_unit=_Policy.TimeUnit.Value(row.burst_unit),
        stop_on_quota_reach=row.stop_on_quota_reach, description=row.description,
    )
    set_timestamp(message.created_at, row.created_at)
    set_timestamp(message.updated_at, row.updated_at)
    return message
