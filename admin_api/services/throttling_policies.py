"""Throttling policies: the tiers subscriptions and applications name, and the policies
APIs and resources name, per organization (WSO2 API Manager's subscription, application
and advanced policies). authz_server enforces them.

Every organization has WSO2's defaults from its creation: subscription `Gold` (5000 per
minute), `Silver` (2000), `Bronze` (1000) and `Unlimited`; application `10PerMin`,
`20PerMin`, `50PerMin` and `Unlimited`; API `Unlimited`. `Unlimited` policies never
change and are never deleted. A policy is named by the entities that use it, so its name
and kind never change, and one in use cannot be deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.empty_pb2 import Empty
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller
from admin_api.views.throttling_policies import throttling_policy_pb
from admin_api.db import models
from admin_api.db.throttling_models import ThrottlingPolicy
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from admin_api.services import isolation, masks, paging, validation
from admin_api.store.unit_of_work import Store, Writer, new_id
from portcullis.admin.v1 import throttling_pb2

Policy = throttling_pb2.ThrottlingPolicy
KINDS = ("SUBSCRIPTION", "APPLICATION", "API")
UNITS = ("SECOND", "MINUTE", "HOUR", "DAY", "MONTH")
BURST_UNITS = ("SECOND", "MINUTE")
UNLIMITED = "Unlimited"
MAX_REQUEST_COUNT = 10**12
MUTABLE = frozenset({"request_count", "unit", "burst_request_count", "burst_unit", "stop_on_quota_reach",
                     "description"})
IMMUTABLE = frozenset({"id", "organization_id", "name", "kind", "created_at", "updated_at"})
_UNIT_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "MONTH": 28 * 86400}


@dataclass(frozen=True)
class Default:
    kind: str
    name: str
    request_count: int
    description: str
    unit: str = "MINUTE"


DEFAULTS = (
    Default("SUBSCRIPTION", "Gold", 5000, "Allows 5000 requests per minute"),
    Default("SUBSCRIPTION", "Silver", 2000, "Allows 2000 requests per minute"),
    Default("SUBSCRIPTION", "Bronze", 1000, "Allows 1000 requests per minute"),
    Default("SUBSCRIPTION", UNLIMITED, 0, "Allows unlimited requests"),
    Default("APPLICATION", "10PerMin", 10, "Allows 10 requests per minute"),
    Default("APPLICATION", "20PerMin", 20, "Allows 20 requests per minute"),
    Default("APPLICATION", "50PerMin", 50, "Allows 50 requests per minute"),
    Default("APPLICATION", UNLIMITED, 0, "Allows unlimited requests"),
    Default("API", UNLIMITED, 0, "Allows unlimited requests"),
)


# --- what the other services call --------------------------------------------------------


def ensure_defaults(writer: Writer, organization_id: str) -> None:
    """The default policies of a (new) organization, those missing only."""
    now = utcnow()
    for default in DEFAULTS:
        if _named(writer.session, organization_id, default.kind, default.name) is None:
            writer.upsert(ThrottlingPolicy(
                id=new_id(), organization_id=organization_id, name=default.name, kind=default.kind,
                request_count=default.request_count, unit=default.unit, burst_request_count=0, burst_unit="SECOND",
                stop_on_quota_reach=True, description=default.description, created_at=now, updated_at=now))


def require(session: Session, organization_id: str, kind: str, name: str, field: str) -> str:
    """`name` when it names a policy of this kind in the organization; else a clear 400."""
    validation.tier(name, field)
    if _named(session, organization_id, kind, name) is not None:
        return name
    known = session.scalars(select(ThrottlingPolicy.name).where(
        ThrottlingPolicy.organization_id == organization_id, ThrottlingPolicy.kind == kind)
        .order_by(ThrottlingPolicy.name).limit(20)).all()
    raise InvalidArgument(f"{field} {name!r} is not a {kind} throttling policy of organization "
                          f"{organization_id!r} (there are: {', '.join(known) or 'none'})", field=field)


# --- the RPCs ----------------------------------------------------------------------------


def create_throttling_policy(store: Store, request: throttling_pb2.CreateThrottlingPolicyRequest,
                             caller: Caller) -> Policy:
    organization_id = isolation.organization(request.organization_id, caller)
    given = request.policy
    name = validation.tier(validation.required(given.name, "policy.name"), "policy.name")
    if name == UNLIMITED:
        raise AlreadyExists(f"policy.name {UNLIMITED!r}: every organization has its Unlimited policies", field="policy.name")
    kind = _kind(given.kind, "policy.kind")
    now = utcnow()
    row = ThrottlingPolicy(id=new_id(), organization_id=organization_id, name=name, kind=kind,
                           stop_on_quota_reach=given.stop_on_quota_reach if given.HasField("stop_on_quota_reach")
                           else True,
                           description=validation.description(given.description, "policy.description"),
                           created_at=now, updated_at=now)
    _set_limits(row, given, set(MUTABLE), creating=True)
    with store.write() as writer:
        if _named(writer.session, organization_id, kind, name) is not None:
            raise AlreadyExists(f"organization {organization_id!r} already has a {kind} policy {name!r}",
                                field="policy.name")
        writer.upsert(row)
        return throttling_policy_pb(row)


def get_throttling_policy(store: Store, request: throttling_pb2.GetThrottlingPolicyRequest, caller: Caller) -> Policy:
    with store.read() as session:
        return throttling_policy_pb(_get(session, request.id, caller))


def list_throttling_policies(store: Store, request: throttling_pb2.ListThrottlingPoliciesRequest,
                             caller: Caller) -> throttling_pb2.ListThrottlingPoliciesResponse:
    organization_id = isolation.organization(request.organization_id, caller)
    size = paging.page_size(request.page_size)
    statement = select(ThrottlingPolicy).where(ThrottlingPolicy.organization_id == organization_id)
    kind = ""
    if request.kind != Policy.KIND_UNSPECIFIED:
        kind = _kind(request.kind, "kind")
        statement = statement.where(ThrottlingPolicy.kind == kind)
    with store.read() as session:
        rows, token = paging.paginate(session, statement, ThrottlingPolicy, size=size, token=request.page_token,
                                      filters=["throttling_policies", organization_id, kind])
        return throttling_pb2.ListThrottlingPoliciesResponse(policies=[throttling_policy_pb(row) for row in rows],
                                                             next_page_token=token)


def update_throttling_policy(store: Store, request: throttling_pb2.UpdateThrottlingPolicyRequest,
                             caller: Caller) -> Policy:
    paths = masks.paths(request.update_mask, mutable=MUTABLE, immutable=IMMUTABLE)
    given = request.policy
    with store.write() as writer:
        row = _get(writer.session, request.id, caller)
        if row.name == UNLIMITED:
            raise FailedPrecondition(f"the {row.kind} policy {UNLIMITED!r} cannot be changed", field="id")
        _set_limits(row, given, set(paths))
        if "stop_on_quota_reach" in paths:
            row.stop_on_quota_reach = given.stop_on_quota_reach if given.HasField("stop_on_quota_reach") else True
        if "description" in paths:
            row.description = validation.description(given.description, "policy.description")
        row.updated_at = utcnow()
        writer.upsert(row)
        return throttling_policy_pb(row)


def delete_throttling_policy(store: Store, request: throttling_pb2.DeleteThrottlingPolicyRequest,
                             caller: Caller) -> Empty:
    with store.write() as writer:
        row = _get(writer.session, request.id, caller)
        if row.name == UNLIMITED:
            raise FailedPrecondition(f"the {row.kind} policy {UNLIMITED!r} cannot be deleted", field="id")
        user = _a_user_of(writer.session, row)
        if user is not None:
            raise FailedPrecondition(f"the {row.kind} policy {row.name!r} is in use ({user}): move it to another "
                                     "policy first", field="id")
        writer.delete(row)
    return Empty()


# --- helpers -----------------------------------------------------------------------------


def _named(session: Session, organization_id: str, kind: str, name: str) -> ThrottlingPolicy | None:
    return session.scalars(select(ThrottlingPolicy).where(
        ThrottlingPolicy.organization_id == organization_id, ThrottlingPolicy.kind == kind,
        ThrottlingPolicy.name == name)).first()


def _get(session: Session, policy_id: str, caller: Caller) -> ThrottlingPolicy:
    return isolation.get(session, ThrottlingPolicy, policy_id, caller, what="throttling policy")


def _kind(value: int, field: str) -> str:
    name = Policy.Kind.Name(value) if value in Policy.Kind.values() else ""
    if name not in KINDS:
        raise InvalidArgument(f"{field} must be one of {', '.join(KINDS)}", field=field)
    return name


def _unit(value: int, field: str, allowed: tuple[str, ...]) -> str:
    name = Policy.TimeUnit.Name(value) if value in Policy.TimeUnit.values() else ""
    if name not in allowed:
        raise InvalidArgument(f"{field} must be one of {', '.join(allowed)}", field=field)
    return name


def _count(value: int, field: str) -> int:
    if not 0 <= value <= MAX_REQUEST_COUNT:
        raise InvalidArgument(f"{field} must be between 0 (no limit) and {MAX_REQUEST_COUNT}", field=field)
    return value


def _set_limits(row: ThrottlingPolicy, given: Policy, paths: set[str], *, creating: bool = False) -> None:
    """The limit fields named in `paths`, then the checks across them. An unspecified unit
    keeps the current one; on create, a limit needs its unit."""
    if "request_count" in paths:
        row.request_count = _count(given.request_count, "policy.request_count")
    if "burst_request_count" in paths:
        row.burst_request_count = _count(given.burst_request_count, "policy.burst_request_count")
    if "unit" in paths and given.unit != Policy.TIME_UNIT_UNSPECIFIED:
        row.unit = _unit(given.unit, "policy.unit", UNITS)
    elif creating:
        if row.request_count > 0:
            raise InvalidArgument(f"policy.unit is required with a request_count (one of {', '.join(UNITS)})",
                                  field="policy.unit")
        row.unit = "MINUTE"
    if "burst_unit" in paths and given.burst_unit != Policy.TIME_UNIT_UNSPECIFIED:
        row.burst_unit = _unit(given.burst_unit, "policy.burst_unit", BURST_UNITS)
    elif creating:
        if row.burst_request_count > 0:
            raise InvalidArgument("policy.burst_unit is required with a burst_request_count (SECOND or MINUTE)",
                                  field="policy.burst_unit")
        row.burst_unit = "SECOND"
    if row.burst_request_count > 0 and row.request_count > 0:
        # Burst control is within the main limit: a shorter window, and no more calls.
        if _UNIT_SECONDS[row.burst_unit] >= _UNIT_SECONDS[row.unit]:
            raise InvalidArgument(f"policy.burst_unit {row.burst_unit} must be shorter than policy.unit {row.unit}",
                                  field="policy.burst_unit")
        if row.burst_request_count > row.request_count:
            raise InvalidArgument("policy.burst_request_count must not exceed policy.request_count",
                                  field="policy.burst_request_count")


def _a_user_of(session: Session, row: ThrottlingPolicy) -> str | None:
    """One entity naming this policy, as text for the error; None when none does."""
    organization_id, name = row.organization_id, row.name
    if row.kind == "SUBSCRIPTION":
        found = session.scalars(select(models.Subscription.id).where(
            models.Subscription.organization_id == organization_id, models.Subscription.tier == name).limit(1)).first()
        return f"subscription {found!r}" if found else None
    if row.kind == "APPLICATION":
        found = session.scalars(select(models.Application.id).where(
            models.Application.organization_id == organization_id,
            models.Application.throttling_tier == name).limit(1)).first()
        return f"application {found!r}" if found else None
    for api in session.scalars(select(models.Api).where(models.Api.organization_id == organization_id)):
        if api.throttling_policy == name:
            return f"API {api.id!r}"
        for resource in api.resources:
            if resource.get("throttling_policy") == name:
                return f"API {api.id!r}, resource {resource.get('method', '*')} {resource.get('path', '')}"
    return None
