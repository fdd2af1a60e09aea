"""The tables of admin_api. Enumerations are stored by their protobuf value name
("PUBLISHED", "PRODUCTION", ...) so that the database reads well and survives
renumbering; nested messages that are only ever read whole (resources, security
schemes, key restrictions) are JSON columns.

Timestamps are UTC (see UtcDateTime). Every entity row carries its organization_id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from admin_api.db.types import UtcDateTime

ID = String(64)


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Anyone may sign up on the developer portal, as a subscriber (off by default).
    self_signup: Mapped[bool] = mapped_column(Boolean, default=False)


class Api(Base):
    __tablename__ = "apis"
    __table_args__ = (
        UniqueConstraint("base_path", name="uq_apis_base_path"),
        UniqueConstraint("organization_id", "name", "version", name="uq_apis_org_name_version"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(30))
    context: Mapped[str] = mapped_column(String(200))
    base_path: Mapped[str] = mapped_column(String(300))
    production_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    sandbox_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    resources: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    security: Mapped[dict[str, Any]] = mapped_column(JSON)
    subscription_less: Mapped[bool] = mapped_column(Boolean, default=False)
    lifecycle_state: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Validated BackendJwtConfig with defaults filled in (proto JSON); None: never set.
    backend_jwt: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    pass_authorization_header: Mapped[bool] = mapped_column(Boolean, default=False)
    enforcement: Mapped[str] = mapped_column(String(16), default="ENFORCE", server_default="ENFORCE")
    # Validated UpstreamConfig (proto JSON); None: the defaults.
    upstream: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # An API-kind throttling policy's name for all calls; "": none.
    throttling_policy: Mapped[str] = mapped_column(String(100), default="")


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("organization_id", "owner", "name", name="uq_applications_org_owner_name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(200))
    throttling_tier: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("application_id", "api_id", name="uq_subscriptions_application_api"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    api_id: Mapped[str] = mapped_column(ForeignKey("apis.id"), index=True)
    tier: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    api_id: Mapped[str] = mapped_column(ForeignKey("apis.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    environment: Mapped[str] = mapped_column(String(20))
    application_id: Mapped[str | None] = mapped_column(ForeignKey("applications.id"), index=True)
    allowed_ips: Mapped[list[str]] = mapped_column(JSON)
    allowed_referrers: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20))
    # Lowercase hex SHA-256 of the value; the value itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    masked_value: Mapped[str] = mapped_column(String(40))
    owner: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str] = mapped_column(String(200), default="")
    # Not a foreign key: both rows may be deleted together with their API.
    replaced_by: Mapped[str] = mapped_column(ID, default="")


class AdminCredential(Base):
    """A bearer token of the admin API (admin, sync or gateway role), stored as its SHA-256:
    the deployment's bootstrap tokens and each organization's admin credential
    (subject `bootstrap-admin:<id>`, admin_api.services.organization_admins)."""

    __tablename__ = "admin_credentials"
    __table_args__ = (UniqueConstraint("subject", name="uq_admin_credentials_subject"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    subject: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChangeRecord(Base):
    """The transactional outbox: one row per changed entity, in revision order."""

    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_entity", "entity_kind", "entity_id"),)

    revision: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    organization_id: Mapped[str] = mapped_column(ID)
    entity_kind: Mapped[str] = mapped_column(String(20))   # sync.v1.EntityKind name
    entity_id: Mapped[str] = mapped_column(ID)
    op: Mapped[str] = mapped_column(String(10))            # "upsert" or "delete"
    # Serialized sync.v1.PolicyEntity (upsert) or sync.v1.EntityRef (delete).
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    committed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RevisionCounter(Base):
    """One row (id 1): the newest revision. Writers increment it with an UPDATE, whose
    row lock serializes them, so revisions are gap-free and in commit order."""

    __tablename__ = "revision_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class KeyManager(Base):
    """An OAuth2 authorization server whose tokens are accepted (resident or external).

    The resident key manager stores no issuer or endpoints: they are derived from the
    deployment's public URL whenever it is answered or synced. The introspection client
    secret and the DCR initial access token are stored encrypted with the KEK
    (admin_api.crypto.kek), bound to the row and column by the associated data.
    """

    __tablename__ = "key_managers"
    __table_args__ = (UniqueConstraint("organization_id", "name", name="uq_key_managers_org_name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(20))             # KeyManager.Type name
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    discovery_url: Mapped[str] = mapped_column(String(2000), default="")
    issuer: Mapped[str] = mapped_column(String(2000), default="")
    jwks_uri: Mapped[str] = mapped_column(String(2000), default="")
    certificate_pem: Mapped[str] = mapped_column(Text, default="")
    token_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    authorization_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    revocation_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    introspection_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    registration_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    userinfo_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    introspection_client_id: Mapped[str] = mapped_column(String(500), default="")
    introspection_client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    registration_access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    accepts_jwt: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_reference_tokens: Mapped[bool] = mapped_column(Boolean, default=False)
    token_format_pattern: Mapped[str] = mapped_column(String(500), default="")
    consumer_key_claim: Mapped[str] = mapped_column(String(100), default="")   # empty: the type's default
    scopes_claim: Mapped[str] = mapped_column(String(100), default="")
    allowed_algorithms: Mapped[list[str]] = mapped_column(JSON)
    audience: Mapped[str] = mapped_column(String(2000), default="")
    leeway_seconds: Mapped[int] = mapped_column(Integer, default=30)
    consumer_app_creation_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    key_generation_allowed_roles: Mapped[list[str]] = mapped_column(JSON)
    key_generation_denied_roles: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApplicationKey(Base):
    """An OAuth2 client of an application: one per (application, environment, key manager)."""

    __tablename__ = "application_keys"
    __table_args__ = (
        UniqueConstraint("consumer_key", name="uq_application_keys_consumer_key"),
        UniqueConstraint("application_id", "environment", "key_manager_id",
                         name="uq_application_keys_app_env_km"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)
    environment: Mapped[str] = mapped_column(String(20))      # Environment name
    key_manager_id: Mapped[str] = mapped_column(ForeignKey("key_managers.id"), index=True)
    consumer_key: Mapped[str] = mapped_column(String(255))
    # OAuthClientSettings as JSON (proto field names), defaults filled in.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(20))           # ApplicationKey.Origin name
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # RFC 7592, for a client registered by Dynamic Client Registration: where it is updated
    # and deleted, and the token that may (sealed with the KEK). "" / None: not known.
    registration_client_uri: Mapped[str] = mapped_column(String(2000), default="")
    registration_access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)


class ConsumerSecret(Base):
    """A consumer secret of an application key: only its SHA-256 and a masked form are stored."""

    __tablename__ = "consumer_secrets"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    application_key_id: Mapped[str] = mapped_column(ForeignKey("application_keys.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    masked_value: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class User(Base):
    """A user of the resident key manager: argon2 password hash and roles."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("organization_id", "username", name="uq_users_org_username"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    username: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Scope(Base):
    """An OAuth2 scope and the roles entitled to it (none: anyone who asks)."""

    __tablename__ = "scopes"
    __table_args__ = (UniqueConstraint("organization_id", "name", name="uq_scopes_org_name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    roles: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
