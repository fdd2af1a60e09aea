"""A key manager's write-only secrets (introspection client secret, registration access
token) are sealed with the KEK, bound by associated data to their row and column."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from admin_api.config import ServiceConfig
    from admin_api.db.models import KeyManager


def key_manager_aad(key_manager_id: str, column: str) -> bytes:
    return f"key_manager:{key_manager_id}:{column}".encode()


def decrypt_key_manager_secret(row: KeyManager, column: str, config: ServiceConfig) -> str:
    """The secret in clear, "" when none is stored (then no KEK is needed)."""
    ciphertext = getattr(row, column + "_encrypted")
    if ciphertext is None:
        return ""
    return config.require_kek().decrypt(ciphertext, key_manager_aad(row.id, column)).decode()
