"""Opaque credentials: how they are made, shown and stored.

API keys and admin tokens are 256 random bits, so a single SHA-256 is a sound way to
store them (there is nothing to brute-force, unlike a password) and it lets the decision
look a key up by its hash in O(1). Passwords use argon2 elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "pck_"
ADMIN_TOKEN_PREFIX = "pca_"
SYNC_TOKEN_PREFIX = "pcs_"
GATEWAY_TOKEN_PREFIX = "pcg_"
MASK_VISIBLE_CHARS = 4


def new_opaque_credential(prefix: str) -> str:
    """A new credential: a recognisable prefix (for secret scanners) and 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def credential_hash(value: str) -> str:
    """Lowercase hex SHA-256 of the value: what is stored and what lookups use."""
    return credential_digest(value).hex()


def credential_digest(value: str) -> bytes:
    """The same SHA-256 as `credential_hash`, as its 32 raw bytes (for in-memory lookups)."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def hashes_match(value: str, stored_hash: str) -> bool:
    return hmac.compare_digest(credential_hash(value), stored_hash)


def mask(value: str) -> str:
    """What a listing shows of a credential: its prefix and a few characters."""
    head = value[: value.find("_") + 1 + MASK_VISIBLE_CHARS] if "_" in value else value[:MASK_VISIBLE_CHARS]
    return head + "…"
