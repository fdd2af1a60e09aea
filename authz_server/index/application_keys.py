"""Application keys: which consumer key (OAuth client id) belongs to which application,
environment and key manager."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from portcullis.sync.v1 import sync_pb2

from authz_server.index.api_keys import KeyEnvironment, environment_of
from authz_server.index.errors import PolicyError

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
