"""A throttling policy as authz_server holds it: a limit per unit, an optional burst limit."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from authz_server.throttle.windows import Unit

KINDS = ("SUBSCRIPTION", "APPLICATION", "API")
UNLIMITED = "Unlimited"


@dataclass(frozen=True, slots=True)
class ThrottlingPolicy:
    id: str
    organization_id: str
    name: str
    kind: str                       # SUBSCRIPTION, APPLICATION or API
    request_count: int              # 0: no limit
    unit: Unit
    burst_request_count: int = 0    # 0: no burst control
    burst_unit: Unit = Unit.SECOND
    stop_on_quota_reach: bool = True

    @property
    def unlimited(self) -> bool:
        return self.request_count <= 0 and self.burst_request_count <= 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.organization_id, self.kind, self.name)


def policy_key(organization_id: str, kind: str, name: str) -> tuple[str, str, str]:
    return (organization_id, kind, sys.intern(name))


class PolicyRecordError(ValueError):
    """A throttling policy record this replica cannot use."""


def compile_throttling_policy(record) -> ThrottlingPolicy:
    """From a `portcullis.admin.v1.ThrottlingPolicy` (admin_api validated it)."""
    from portcullis.admin.v1 import throttling_pb2

    kinds = throttling_pb2.ThrottlingPolicy.Kind
    units = throttling_pb2.ThrottlingPolicy.TimeUnit
    if not record.id or not record.organization_id or not record.name:
        raise PolicyRecordError("throttling policy record without an id, organization or name")
    kind = kinds.Name(record.kind) if record.kind in kinds.values() else ""
    if kind not in KINDS:
        raise PolicyRecordError(f"throttling policy {record.id} has no known kind ({record.kind})")
    request_count = max(0, record.request_count)
    burst = max(0, record.burst_request_count)
    unit = _unit(units, record.unit, required=request_count > 0, what=f"throttling policy {record.id} unit")
    burst_unit = _unit(units, record.burst_unit, required=burst > 0, what=f"throttling policy {record.id} burst unit")
    return ThrottlingPolicy(
        id=record.id,
        organization_id=sys.intern(record.organization_id),
        name=sys.intern(record.name),
        kind=kind,
        request_count=request_count,
        unit=unit,
        burst_request_count=burst,
        burst_unit=burst_unit,
        stop_on_quota_reach=record.stop_on_quota_reach if record.HasField("stop_on_quota_reach") else True,
    )


def _unit(units, value: int, *, required: bool, what: str) -> Unit:
    name = units.Name(value) if value in units.values() else ""
    if name in Unit.__members__:
        return Unit[name]
    if required:
        raise PolicyRecordError(f"{what} is not a known time unit ({value})")
    return Unit.SECOND
