"""Rows → protobuf messages: the admin view of each entity and its sync record.

One function per entity; `policy_entity` picks the right one for the change log and the
snapshot. The API key's admin view carries only the masked value, its sync record only
the hash.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from admin_api.db import models
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

EntityRow = models.Organization | models.Api | models.Application | models.Subscription | models.ApiKey

ENTITY_KINDS: dict[type, int] = {
    models.Organization: sync_pb2.ORGANIZATION,
    models.Api: sync_pb2.API,
    models.Application: sync_pb2.APPLICATION,
    models.Subscription: sync_pb2.SUBSCRIPTION,
    models.ApiKey: sync_pb2.API_KEY,
}


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def organization_pb(row: models.Organization) -> admin_pb2.Organization:
    return admin_pb2.Organization(id=row.id, name=row.name, created_at=_ts(row.created_at))


def security_pb(stored: dict) -> admin_pb2.SecuritySchemes:
    return json_format.ParseDict(stored, admin_pb2.SecuritySchemes())


def security_json(message: admin_pb2.SecuritySchemes) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def resource_pb(stored: dict) -> admin_pb2.Resource:
    return admin_pb2.Resource(method=stored["method"], path=stored["path"], open=stored["open"],
                              scopes=stored.get("scopes", []))


def resource_json(resource: admin_pb2.Resource) -> dict:
    return {"method": resource.method, "path": resource.path, "open": resource.open,
            "scopes": list(resource.scopes)}


def api_pb(row: models.Api) -> admin_pb2.Api:
    return admin_pb2.Api(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        version=row.version,
        context=row.context,
        base_path=row.base_path,
        production_endpoint=row.production_endpoint,
        sandbox_endpoint=row.sandbox_endpoint,
        resources=[resource_pb(r) for r in row.resources],
        security=security_pb(row.security),
        subscription_less=row.subscription_less,
        lifecycle_state=admin_pb2.Api.LifecycleState.Value(row.lifecycle_state),
        description=row.description,
        created_at=_ts(row.created_at),
        updated_at=_ts(row.updated_at),
    )


def application_pb(row: models.Application) -> admin_pb2.Application:
    return admin_pb2.Application(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        owner=row.owner,
        throttling_tier=row.throttling_tier,
        description=row.description,
        created_at=_ts(row.created_at),
        updated_at=_ts(row.updated_at),
    )


def subscription_pb(row: models.Subscription) -> admin_pb2.Subscription:
    return admin_pb2.Subscription(
        id=row.id,
        organization_id=row.organization_id,
        application_id=row.application_id,
        api_id=row.api_id,
        tier=row.tier,
        status=admin_pb2.Subscription.Status.Value(row.status),
        created_at=_ts(row.created_at),
        updated_at=_ts(row.updated_at),
    )


def api_key_pb(row: models.ApiKey) -> admin_pb2.ApiKey:
    message = admin_pb2.ApiKey(
        id=row.id,
        organization_id=row.organization_id,
        api_id=row.api_id,
        name=row.name,
        environment=admin_pb2.Environment.Value(row.environment),
        application_id=row.application_id or "",
        allowed_ips=row.allowed_ips,
        allowed_referrers=row.allowed_referrers,
        status=admin_pb2.ApiKey.Status.Value(row.status),
        masked_value=row.masked_value,
        owner=row.owner,
        created_at=_ts(row.created_at),
        revoked_by=row.revoked_by,
        replaced_by=row.replaced_by,
    )
    if row.expires_at is not None:
        message.expires_at.CopyFrom(_ts(row.expires_at))
    if row.revoked_at is not None:
        message.revoked_at.CopyFrom(_ts(row.revoked_at))
    return message


def api_key_record(row: models.ApiKey) -> sync_pb2.ApiKeyRecord:
    return sync_pb2.ApiKeyRecord(
        id=row.id,
        organization_id=row.organization_id,
        api_id=row.api_id,
        key_hash=row.key_hash,
        environment=admin_pb2.Environment.Value(row.environment),
        application_id=row.application_id or "",
        allowed_ips=row.allowed_ips,
        allowed_referrers=row.allowed_referrers,
        expires_at_unix=int(row.expires_at.timestamp()) if row.expires_at is not None else 0,
        revoked=row.status == "REVOKED",
    )


def policy_entity(row: EntityRow) -> sync_pb2.PolicyEntity:
    if isinstance(row, models.Organization):
        return sync_pb2.PolicyEntity(organization=organization_pb(row))
    if isinstance(row, models.Api):
        return sync_pb2.PolicyEntity(api=api_pb(row))
    if isinstance(row, models.Application):
        return sync_pb2.PolicyEntity(application=application_pb(row))
    if isinstance(row, models.Subscription):
        return sync_pb2.PolicyEntity(subscription=subscription_pb(row))
    return sync_pb2.PolicyEntity(api_key=api_key_record(row))
