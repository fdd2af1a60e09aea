"""Application keys: which consumer key (OAuth client id) belongs to which application,
environment and key manager."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from immutables import Map

from portcullis.sync.v1 import sync_pb2

from authz_server.index.api_keys import KeyEnvironment, environment_of
from authz_server.index.errors import PolicyError
from authz_server.index.table import Table, TableEdit, unfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplicationKeyPolicy:
    id: str
    organization_id: str
    application_id: str
    environment: KeyEnvironment | None     # None: unknown environment, serves nowhere
    key_manager_id: str
    consumer_key: str

    @property
    def lookup(self) -> tuple[str, str, str]:
        """The index key: a consumer key is only meaningful at its own key manager."""
        return (self.organization_id, self.key_manager_id, self.consumer_key)


def compile_application_key(record: sync_pb2.ApplicationKeyRecord) -> ApplicationKeyPolicy:
    if not record.id or not record.consumer_key or not record.key_manager_id or not record.application_id:
        raise PolicyError("application key record without an id, consumer key, key manager or application")
    environment = environment_of(record.environment)
    if environment is None:
        log.error("application key %s has environment %d; it will be refused", record.id, record.environment)
    return ApplicationKeyPolicy(
        id=record.id,
        organization_id=record.organization_id,
        application_id=record.application_id,
        environment=environment,
        key_manager_id=record.key_manager_id,
        consumer_key=record.consumer_key,
    )


@dataclass(frozen=True, slots=True)
class ApplicationKeyTable(Table):
    entity: ClassVar[str] = "application_key"
    ref_kind: ClassVar[int] = sync_pb2.APPLICATION_KEY
    by_id: Map = Map()  # id → ApplicationKeyPolicy
    by_client: Map = Map()  # (organization_id, key_manager_id, consumer_key) → ApplicationKeyPolicy

    def for_client(self, organization_id: str, key_manager_id: str, consumer_key: str) -> ApplicationKeyPolicy | None:
        return self.by_client.get((organization_id, key_manager_id, consumer_key))

    def edit(self) -> "_ApplicationKeyEdit":
        return _ApplicationKeyEdit(self)


class _ApplicationKeyEdit(TableEdit):
    def __init__(self, base: ApplicationKeyTable) -> None:
        self.by_id = base.by_id.mutate()
        self.by_client = base.by_client.mutate()

    def upsert(self, record: sync_pb2.ApplicationKeyRecord) -> None:
        key = compile_application_key(record)
        self.delete(key.id)
        self.by_id[key.id] = key
        self.by_client[key.lookup] = key

    def delete(self, entity_id: str) -> None:
        old: ApplicationKeyPolicy | None = self.by_id.pop(entity_id, None)
        if old is not None:
            unfile(self.by_client, old.lookup, old.id)

    def finish(self) -> ApplicationKeyTable:
        return ApplicationKeyTable(by_id=self.by_id.finish(), by_client=self.by_client.finish())
