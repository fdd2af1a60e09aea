"""First-start credentials: the bootstrap admin token, the sync token for authz_server
and the gateway token for Envoy's xDS stream.

Each is created once, stored as its SHA-256, and written to its file with mode 0600. A
later start finds the credential in the database and leaves the file alone; a lost file
is not recreated (delete the credential row to rotate it).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from admin_api.access.caller import Role
from admin_api.db.models import AdminCredential, Organization
from admin_api.db.types import utcnow
from admin_api.services import key_managers
from admin_api.services.organization_admins import BOOTSTRAP_ADMIN_SUBJECT
from admin_api.services.organizations import DEFAULT_ORGANIZATION
from admin_api.store.unit_of_work import Store, new_id
from portcullis_shared.credentials import (
    ADMIN_TOKEN_PREFIX, GATEWAY_TOKEN_PREFIX, SYNC_TOKEN_PREFIX, credential_hash, new_opaque_credential,
)

log = logging.getLogger(__name__)

SYNC_SUBJECT = "authz-sync"
GATEWAY_SUBJECT = "envoy-gateway"


@dataclass(frozen=True)
class CreatedTokens:
    admin_token: str | None   # set only when created by this start
    sync_token: str | None
    gateway_token: str | None = None


def ensure_credentials(store: Store, admin_token_file: Path, sync_token_file: Path,
                       gateway_token_file: Path | None = None) -> CreatedTokens:
    return CreatedTokens(
        admin_token=_ensure(store, BOOTSTRAP_ADMIN_SUBJECT, Role.ADMIN, ADMIN_TOKEN_PREFIX, admin_token_file),
        sync_token=_ensure(store, SYNC_SUBJECT, Role.SYNC, SYNC_TOKEN_PREFIX, sync_token_file),
        gateway_token=(None if gateway_token_file is None else
                       _ensure(store, GATEWAY_SUBJECT, Role.GATEWAY, GATEWAY_TOKEN_PREFIX, gateway_token_file)),
    )


def ensure_resident_key_managers(store: Store) -> None:
    """Give every organization its resident key manager: the default one on first start,
    and organizations made before key managers existed (an upgraded database)."""
    with store.write() as writer:
        for organization_id in writer.session.scalars(select(Organization.id).order_by(Organization.id)).all():
            key_managers.ensure_resident(writer, organization_id)


def _ensure(store: Store, subject: str, role: Role, prefix: str, path: Path) -> str | None:
    with store.write() as writer:
        existing = writer.session.scalars(select(AdminCredential).where(AdminCredential.subject == subject)).first()
        if existing is not None:
            if not path.exists():
                log.warning("credential %s exists but %s is missing; it is not recreated", subject, path)
            return None
        token = new_opaque_credential(prefix)
        writer.session.add(AdminCredential(id=new_id(), token_hash=credential_hash(token), role=role.value,
                                           organization_id=DEFAULT_ORGANIZATION, subject=subject,
                                           created_at=utcnow()))
        writer.session.flush()
        # Written before commit: if the file cannot be written, no unusable credential remains.
        write_secret_file(path, token)
    log.info("created credential %s (role %s) in %s", subject, role.value, path)
    return token


def write_secret_file(path: Path, content: str) -> None:
    """Write `content` to `path`, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # also when the file existed with wider permissions
        os.write(fd, (content + "\n").encode())
    finally:
        os.close(fd)
