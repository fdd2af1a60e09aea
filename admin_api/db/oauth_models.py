"""Tables of the resident key manager (Portcullis's own OAuth2 server).

Kept apart from admin_api.db.models because only admin_api.oauth reads and writes them,
except `RevokedToken`, which is a synced entity (sync.v1.RevokedTokenRecord).

No token or code is stored in clear: only the SHA-256 of each value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.db.models import ID, Base
from admin_api.db.types import UtcDateTime


class SigningKey(Base):
    """A key that signs resident JWT access tokens. Deployment-wide: every organization's
    resident key manager has the same issuer (the public URL) and one JWKS.

    Lifecycle: activated (the newest activated, unretired key signs) → retired (signs no
    more, still published) → expires_at passed (every token it signed has expired;
    pruned)."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(ID, primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(10))        # ES256 or RS256
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    # PKCS#8 PEM encrypted with the KEK, associated data b"signing_key:<kid>".
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OAuthToken(Base):
    """An access or refresh token issued by the resident key manager, by its SHA-256.

    JWT access tokens are recorded too (by the hash of the whole JWT), so that
    introspection and revocation treat both formats alike."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        Index("ix_oauth_tokens_grant_id", "grant_id"),
        Index("ix_oauth_tokens_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)         # the jti of an access token
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(20))                 # access_token | refresh_token
    format: Mapped[str] = mapped_column(String(20))               # jwt | reference | refresh
    kid: Mapped[str] = mapped_column(ID, default="")              # signing key of a JWT
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    key_manager_id: Mapped[str] = mapped_column(ID)
    # Not a foreign key: tokens outlive a deleted application key until they expire.
    application_key_id: Mapped[str] = mapped_column(ID)
    consumer_key: Mapped[str] = mapped_column(String(255))
    grant_type: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(255))            # user id, or the consumer key
    username: Mapped[str] = mapped_column(String(200), default="")
    scope: Mapped[str] = mapped_column(Text, default="")
    # Tokens of one grant (a code or password exchange and its refreshes) share this id,
    # so revoking a refresh token also revokes the access tokens issued with it.
    grant_id: Mapped[str] = mapped_column(ID)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuthorizationCode(Base):
    """A one-time authorization code (RFC 6749 §4.1), by its SHA-256; deleted on use."""

    __tablename__ = "oauth_authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    application_key_id: Mapped[str] = mapped_column(ID)
    consumer_key: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ID)
    username: Mapped[str] = mapped_column(String(200))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(Text, default="")
    code_challenge: Mapped[str] = mapped_column(String(128), default="")
    code_challenge_method: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RevokedToken(Base):
    """A resident access token revoked before its expiry (RFC 7009): a JWT by its jti, a
    reference (pct_) token by its SHA-256 hex (64 digits, never a jti). Synced to every
    authz_server (RevokedTokenRecord) so that it is denied there at once."""

    __tablename__ = "revoked_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True)         # the jti, or a reference token's digest
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    key_manager_id: Mapped[str] = mapped_column(ID)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class LoginFailure(Base):
    """Failed logins in a row of one account or client at the resident key manager
    (admin_api.login_guard), kept in the database so that every admin_api replica counts
    the same guesses and honours the same lockout. The key is the SHA-256 of what is
    guessed (kind, organization, username or consumer key), not the name itself."""

    __tablename__ = "login_failures"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column()
    lockouts: Mapped[int] = mapped_column()
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    touched_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
