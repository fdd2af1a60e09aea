"""The key-encryption key (KEK): what encrypts secrets admin_api must keep readable.

Signing private keys and key-manager client secrets cannot be hashed (they are used,
not compared), so they are stored encrypted with AES-256-GCM under this one key.
The KEK itself comes from the environment (`PORTCULLIS_KEK`, base64url of 32 bytes),
from a file (`PORTCULLIS_KEK_FILE`), or from `<data dir>/kek`, created 0600 on first use.

Ciphertext layout: version byte (1) | 96-bit random nonce | GCM ciphertext and tag.
The associated data (aad) binds a ciphertext to its row (e.g. b"signing_key:<kid>"),
so a ciphertext copied into another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portcullis_shared.settings import MeshSettings

KEK_ENV = "PORTCULLIS_KEK"
KEK_FILE_NAME = "kek"
KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = 1


class KekError(Exception):
    """The KEK cannot be loaded (malformed value, unreadable file)."""


class DecryptionError(Exception):
    """A ciphertext does not decrypt: wrong key, wrong associated data, or tampered."""


def _decode_key(raw: str, origin: str) -> bytes:
    text = raw.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise KekError(f"{origin} is not base64url") from None
    if len(key) != KEY_BYTES:
        raise KekError(f"{origin} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Kek:
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise KekError(f"a KEK is {KEY_BYTES} bytes, got {len(self.key)}")

    @classmethod
    def generate(cls) -> "Kek":
        return cls(secrets.token_bytes(KEY_BYTES))

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return bytes([FORMAT_VERSION]) + nonce + AESGCM(self.key).encrypt(nonce, plaintext, aad)

    def decrypt(self, ciphertext: bytes, aad: bytes) -> bytes:
        if len(ciphertext) < 1 + NONCE_BYTES + 16:
            raise DecryptionError("ciphertext is too short")
        if ciphertext[0] != FORMAT_VERSION:
            raise DecryptionError(f"unknown ciphertext version {ciphertext[0]}")
        nonce, body = ciphertext[1:1 + NONCE_BYTES], ciphertext[1 + NONCE_BYTES:]
        try:
            return AESGCM(self.key).decrypt(nonce, body, aad)
        except InvalidTag:
            raise DecryptionError("ciphertext does not decrypt with this KEK and associated data") from None


def _create_key_file(path: Path) -> None:
    """Writes a new key to `path` unless a file is there. Written whole under a temporary
    name first, then linked into place (link fails when `path` exists): replicas starting
    at once on one data directory never overwrite each other's key, and none reads a file
    another has created but not yet filled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(encode_key(secrets.token_bytes(KEY_BYTES)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass    # another process made it first: theirs is the key
    finally:
        temporary.unlink(missing_ok=True)


def _read_key_file(path: Path) -> Kek:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KekError(f"cannot read the KEK file {path}: {exc}") from None
    return Kek(_decode_key(text, f"the KEK file {path}"))


def load_kek(settings: MeshSettings) -> Kek:
    """The deployment's KEK: `PORTCULLIS_KEK`, else `PORTCULLIS_KEK_FILE`, else
    `<data dir>/kek` (created with mode 0600 when missing)."""
    if settings.kek:
        return Kek(_decode_key(settings.kek, KEK_ENV))
    if settings.kek_file is not None:
        return _read_key_file(settings.kek_file)
    path = settings.data_dir / KEK_FILE_NAME
    if not path.exists():
        _create_key_file(path)
    return _read_key_file(path)
