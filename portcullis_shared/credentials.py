"""Opaque credentials: how they are made, shown and stored.

API keys and admin tokens are 256 random bits, so a single SHA-256 is a sound way to
store them (there is nothing to brute-force, unlike a password) and it lets the decision
look a key up by its hash in O(1). Passwords use argon2 elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import re
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


# Portcullis's own credential prefixes ("pck_", "pcsec_", ...): a listing shows them whole.
# Only these: a value from elsewhere (an identity provider's client_secret) may hold "_"
# anywhere, and everything up to its first "_" once counted as a prefix, the whole secret
# when that "_" came late.
_OWN_PREFIX = re.compile(r"pc[a-z]{1,4}_")


def mask(value: str) -> str:
    """What a listing shows of a credential: Portcullis's prefix, if it has one, and at
    most MASK_VISIBLE_CHARS characters of the rest, never more than a quarter of it."""
    own = _OWN_PREFIX.match(value)
    prefix = own.group(0) if own else ""
    rest = value[len(prefix):]
    return prefix + rest[:min(MASK_VISIBLE_CHARS, len(rest) // 4)] + "…"
