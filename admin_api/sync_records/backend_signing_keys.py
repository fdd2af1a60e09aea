"""A backend signing key's sync record: replicas sign backend JWTs with it."""

from __future__ import annotations

import json
from datetime import datetime

from admin_api.config import ServiceConfig
from admin_api.db.backend_jwt_models import BackendSigningKey, private_key_aad
from portcullis.sync.v1 import sync_pb2


def _unix(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else 0


def backend_signing_key_record(row: BackendSigningKey, config: ServiceConfig) -> sync_pb2.BackendSigningKeyRecord:
    """With the private key in clear: the outbox seals the change-log payload with the KEK."""
    return sync_pb2.BackendSigningKeyRecord(
        id=row.id,
        algorithm=row.algorithm,
        private_key_pem=config.require_kek().decrypt(row.private_key_encrypted,
                                                     private_key_aad(row.id)).decode("ascii"),
        public_jwk_json=json.dumps(row.public_jwk, sort_keys=True, separators=(",", ":")),
        not_before_unix=_unix(row.activated_at),
        retired_at_unix=_unix(row.retired_at),
        expires_at_unix=_unix(row.expires_at),
    )
