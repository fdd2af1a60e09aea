"""The table of backend-JWT signing keys (synced to every authz_server, which signs).

Kept apart from admin_api.db.models because only admin_api.backend_jwt writes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.db.models import ID, Base
from admin_api.db.types import UtcDateTime

def private_key_aad(kid: str) -> bytes:
    """Associated data binding an encrypted private key to its row."""
    return f"backend_signing_key:{kid}".encode()


# Deployment-wide keys are filed under the default organization in the change log.
KEYS_ORGANIZATION = "default"


class BackendSigningKey(Base):
    """A key that signs backend JWTs. One is active per algorithm: the newest activated,
    unretired one. Lifecycle: activated → retired (signs no more, still published) →
    expires_at passed (no backend JWT it signed is valid any more; pruned)."""

    __tablename__ = "backend_signing_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)            # the kid (RFC 7638 thumbprint)
    algorithm: Mapped[str] = mapped_column(String(10))               # ES256, RS256 or EdDSA
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    # PKCS#8 PEM encrypted with the KEK, associated data b"backend_signing_key:<kid>".
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def organization_id(self) -> str:
        return KEYS_ORGANIZATION
