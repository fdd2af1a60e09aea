"""API-bound API keys: generate, read, list (masked), regenerate, revoke, associate and
dissociate.

A key's value is returned once, by GenerateApiKey and RegenerateApiKey; only its
SHA-256 is stored. Regenerate revokes the old row at once (replaced_by points at the new
one) and creates a new row with the same API, name, environment, restrictions, expiry and
application. Revoke, regenerate, associate and dissociate are allowed to the key's owner
or to an admin of its organization.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from admin_api.services import apis, isolation, ownership, paging, validation
from admin_api.store.unit_of_work import Store, Writer, new_id
from admin_api.views.api_keys import api_key_pb
from portcullis.admin.v1 import admin_pb2
from portcullis_shared.credentials import API_KEY_PREFIX, credential_hash, mask, new_opaque_credential

ACTIVE = "ACTIVE"
REVOKED = "REVOKED"
KEYABLE_STATES = frozenset({"PUBLISHED", "DEPRECATED"})
MAX_VALIDITY_DAYS = 3650


def generate_api_key(store: Store, request: admin_pb2.GenerateApiKeyRequest,
                     caller: Caller) -> admin_pb2.GenerateApiKeyResponse:
    key_name = validation.name(request.name)
    environment = _environment(request.environment)
    if not 0 <= request.validity_days <= MAX_VALIDITY_DAYS:
        raise InvalidArgument(f"validity_days {request.validity_days} must be between 0 (no expiry) and "
                              f"{MAX_VALIDITY_DAYS}", field="validity_days")
    allowed_ips = validation.ip_restrictions(list(request.allowed_ips))
    allowed_referrers = validation.referrer_restrictions(list(request.allowed_referrers))
    now = utcnow()
    expires_at = now + timedelta(days=request.validity_days) if request.validity_days else None
    with store.write() as writer:
        api = apis.visible_api(writer.session, request.api_id, caller, field="api_id")
        _check_api_keyable(api)
        application_id = None
        if request.application_id:
            application_id = ownership.application(writer.session, request.application_id, caller,
                                                   field="application_id").id
        return _issue(writer, now, api_id=api.id, organization_id=api.organization_id, name=key_name,
                      environment=environment, application_id=application_id, allowed_ips=allowed_ips,
                      allowed_referrers=allowed_referrers, expires_at=expires_at, owner=caller.subject)


def get_api_key(store: Store, request: admin_pb2.GetApiKeyRequest, caller: Caller) -> admin_pb2.ApiKey:
    with store.read() as session:
        return api_key_pb(ownership.api_key(session, request.id, caller))


def list_api_keys(store: Store, request: admin_pb2.ListApiKeysRequest,
                  caller: Caller) -> admin_pb2.ListApiKeysResponse:
    organization_id = isolation.organization(request.organization_id, caller)
    size = paging.page_size(request.page_size)
    statement = select(models.ApiKey).where(models.ApiKey.organization_id == organization_id)
    if request.api_id:
        statement = statement.where(models.ApiKey.api_id == request.api_id)
    if request.application_id:
        statement = statement.where(models.ApiKey.application_id == request.application_id)
    if not request.include_revoked:
        statement = statement.where(models.ApiKey.status == ACTIVE)
    if caller.own_resources_only:
        statement = statement.where(models.ApiKey.owner == caller.subject)
    with store.read() as session:
        rows, token = paging.paginate(
            session, statement, models.ApiKey, size=size, token=request.page_token,
            filters=["api_keys", organization_id, request.api_id, request.application_id, request.include_revoked,
                     caller.own_resources_only and caller.subject])
        return admin_pb2.ListApiKeysResponse(api_keys=[api_key_pb(row) for row in rows], next_page_token=token)


def regenerate_api_key(store: Store, request: admin_pb2.RegenerateApiKeyRequest,
                       caller: Caller) -> admin_pb2.GenerateApiKeyResponse:
    now = utcnow()
    with store.write() as writer:
        old = _get_active_for_change(writer, request.id, caller, "regenerate")
        if old.expires_at is not None and old.expires_at <= now:
            raise FailedPrecondition(f"API key {old.id!r} has expired: generate a new key instead", field="id")
        _check_api_keyable(writer.session.get_one(models.Api, old.api_id))
        new_id_value = new_id()
        _revoke(writer, old, caller, now, replaced_by=new_id_value)
        return _issue(writer, now, key_id=new_id_value, api_id=old.api_id,
                      organization_id=old.organization_id, name=old.name, environment=old.environment,
                      application_id=old.application_id, allowed_ips=list(old.allowed_ips),
                      allowed_referrers=list(old.allowed_referrers), expires_at=old.expires_at, owner=old.owner)


def revoke_api_key(store: Store, request: admin_pb2.RevokeApiKeyRequest, caller: Caller) -> admin_pb2.ApiKey:
    with store.write() as writer:
        row = _get_active_for_change(writer, request.id, caller, "revoke")
        _revoke(writer, row, caller, utcnow())
        return api_key_pb(row)


def associate_api_key(store: Store, request: admin_pb2.AssociateApiKeyRequest,
                      caller: Caller) -> admin_pb2.ApiKey:
    with store.write() as writer:
        row = _get_active_for_change(writer, request.id, caller, "associate")
        application = ownership.application(writer.session, request.application_id, caller,
                                            field="application_id")
        row.application_id = application.id
        writer.upsert(row)
        return api_key_pb(row)


def dissociate_api_key(store: Store, request: admin_pb2.DissociateApiKeyRequest,
                       caller: Caller) -> admin_pb2.ApiKey:
    with store.write() as writer:
        row = _get_active_for_change(writer, request.id, caller, "dissociate")
        if row.application_id is None:
            raise FailedPrecondition(f"API key {row.id!r} is not associated with an application", field="id")
        row.application_id = None
        writer.upsert(row)
        return api_key_pb(row)


def may_change(row: models.ApiKey, caller: Caller) -> bool:
    """The key's owner, or an admin of its organization (isolation.get checked the organization)."""
    return row.owner == caller.subject or caller.is_admin


def _get_active_for_change(writer: Writer, key_id: str, caller: Caller, action: str) -> models.ApiKey:
    row = ownership.api_key(writer.session, key_id, caller)
    if not may_change(row, caller):
        raise PermissionDenied(f"only the owner of API key {row.id!r} or an admin may {action} it")
    if row.status != ACTIVE:
        raise FailedPrecondition(f"API key {row.id!r} is revoked and cannot be changed; "
                                 "generate a new key instead", field="id")
    return row


def _check_api_keyable(api: models.Api) -> None:
    if api.lifecycle_state not in KEYABLE_STATES:
        raise FailedPrecondition(f"API {api.id!r} is {api.lifecycle_state}: API keys are issued only for "
                                 "PUBLISHED or DEPRECATED APIs", field="api_id")


def _environment(value: int) -> str:
    if value == admin_pb2.ENVIRONMENT_UNSPECIFIED:
        return "PRODUCTION"
    if value not in (admin_pb2.PRODUCTION, admin_pb2.SANDBOX):
        raise InvalidArgument("environment must be PRODUCTION or SANDBOX", field="environment")
    return admin_pb2.Environment.Name(value)


def _revoke(writer: Writer, row: models.ApiKey, caller: Caller, now: datetime, replaced_by: str = "") -> None:
    row.status = REVOKED
    row.revoked_at = now
    row.revoked_by = caller.subject
    row.replaced_by = replaced_by
    writer.upsert(row)


def _issue(writer: Writer, now: datetime, *, key_id: str | None = None,
           **settings: object) -> admin_pb2.GenerateApiKeyResponse:
    value = new_opaque_credential(API_KEY_PREFIX)
    row = models.ApiKey(id=key_id or new_id(), status=ACTIVE, key_hash=credential_hash(value),
                        masked_value=mask(value), created_at=now, revoked_at=None, revoked_by="",
                        replaced_by="", **settings)
    writer.upsert(row)
    return admin_pb2.GenerateApiKeyResponse(api_key=api_key_pb(row), value=value)
