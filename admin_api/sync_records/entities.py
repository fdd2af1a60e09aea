"""The kinds of entity replicas receive: for each table, its EntityKind and how its row
becomes a PolicyEntity. The outbox and the snapshot use only this table, so a row of any
other table is refused (UnknownEntityRow) rather than sent as something it is not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from admin_api.config import ServiceConfig
from admin_api.db import models, oauth_models
from admin_api.db.backend_jwt_models import BackendSigningKey
from admin_api.db.throttling_models import ThrottlingPolicy
from admin_api.sync_records.api_keys import fill_api_key_record
from admin_api.sync_records.application_keys import application_key_record
from admin_api.sync_records.backend_signing_keys import backend_signing_key_record
from admin_api.sync_records.key_managers import key_manager_record
from admin_api.sync_records.revoked_tokens import revoked_token_record
from admin_api.views.apis import api_pb
from admin_api.views.applications import fill_application
from admin_api.views.organizations import organization_pb
from admin_api.views.subscriptions import fill_subscription
from admin_api.views.throttling_policies import throttling_policy_pb
from portcullis.sync.v1 import sync_pb2

EntityRow = (models.Organization | models.Api | models.Application | models.Subscription | models.ApiKey
             | models.KeyManager | models.ApplicationKey | oauth_models.RevokedToken | BackendSigningKey
             | ThrottlingPolicy)


class UnknownEntityRow(TypeError):
    """A row of a table whose changes replicas do not receive: a programming error."""


@dataclass(frozen=True)
class SyncedEntity:
    kind: int                                                  # sync_pb2.EntityKind
    record: Callable[[Any, ServiceConfig], sync_pb2.PolicyEntity]


def _filled(field: str, fill: Callable[[Any, Any], None]) -> Callable[[Any, ServiceConfig], sync_pb2.PolicyEntity]:
    # Filled in place: the bulk kinds skip a keyword construction and a copy per row.
    def record(row: Any, _config: ServiceConfig) -> sync_pb2.PolicyEntity:
        entity = sync_pb2.PolicyEntity()
        fill(getattr(entity, field), row)
        return entity
    return record


SYNCED: dict[type, SyncedEntity] = {
    models.Organization: SyncedEntity(sync_pb2.ORGANIZATION,
                                      lambda row, _: sync_pb2.PolicyEntity(organization=organization_pb(row))),
    models.Api: SyncedEntity(sync_pb2.API, lambda row, _: sync_pb2.PolicyEntity(api=api_pb(row))),
    models.Application: SyncedEntity(sync_pb2.APPLICATION, _filled("application", fill_application)),
    models.Subscription: SyncedEntity(sync_pb2.SUBSCRIPTION, _filled("subscription", fill_subscription)),
    models.ApiKey: SyncedEntity(sync_pb2.API_KEY, _filled("api_key", fill_api_key_record)),
    models.KeyManager: SyncedEntity(sync_pb2.KEY_MANAGER, lambda row, config: sync_pb2.PolicyEntity(
        key_manager=key_manager_record(row, config))),
    models.ApplicationKey: SyncedEntity(sync_pb2.APPLICATION_KEY, lambda row, _: sync_pb2.PolicyEntity(
        application_key=application_key_record(row))),
    oauth_models.RevokedToken: SyncedEntity(sync_pb2.REVOKED_TOKEN, lambda row, _: sync_pb2.PolicyEntity(
        revoked_token=revoked_token_record(row))),
    BackendSigningKey: SyncedEntity(sync_pb2.BACKEND_SIGNING_KEY, lambda row, config: sync_pb2.PolicyEntity(
        backend_signing_key=backend_signing_key_record(row, config))),
    ThrottlingPolicy: SyncedEntity(sync_pb2.THROTTLING_POLICY, lambda row, _: sync_pb2.PolicyEntity(
        throttling_policy=throttling_policy_pb(row))),
}


def _synced(row: object) -> SyncedEntity:
    try:
        return SYNCED[type(row)]
    except KeyError:
        raise UnknownEntityRow(f"replicas receive no {type(row).__name__} rows") from None


def entity_kind(row: EntityRow) -> int:
    return _synced(row).kind


def policy_entity(row: EntityRow, config: ServiceConfig | None = None) -> sync_pb2.PolicyEntity:
    return _synced(row).record(row, config or ServiceConfig())
