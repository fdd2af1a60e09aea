"""What the services need of the deployment's settings, read once at start-up.

The Store carries one ServiceConfig; every session it opens carries it too
(`session.info["config"]`), so the change log and the snapshot can render records that
depend on the deployment (the resident key manager's issuer, decrypted key-manager
secrets) without reading the environment per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from admin_api.login_guard import LoginGuard
from admin_api.crypto.kek import Kek
from admin_api.errors import FailedPrecondition
from sqlalchemy.orm import Session
from portcullis_shared.settings import MeshSettings

HTTP_TIMEOUT_SECONDS = 5.0
_DECLARED = MeshSettings()  # the declared defaults (portcullis_shared/settings.py), not a second copy
CONFIG_KEY = "portcullis.config"  # where a Store's sessions carry its ServiceConfig (session.info)


@dataclass(frozen=True)
class ServiceConfig:
    # The resident key manager's issuer and the base of its OAuth2 endpoints.
    public_url: str = _DECLARED.public_url
    multiple_consumer_secrets: bool = _DECLARED.multiple_consumer_secrets
    max_consumer_secrets: int = _DECLARED.max_consumer_secrets   # per application key; 0: no maximum
    authorization_code_seconds: float = _DECLARED.authorization_code_seconds
    # Failed logins per account and per client of the resident key manager (mutable, per process).
    login_guard: LoginGuard = field(default_factory=lambda: LoginGuard(_DECLARED.login_max_failures,
                                                                       _DECLARED.login_lockout_seconds))
    # Encrypts key-manager secrets at rest; None only in tests that store none.
    kek: Kek | None = None
    # Outgoing calls to external key managers (discovery, Dynamic Client Registration).
    http_timeout: float = HTTP_TIMEOUT_SECONDS
    # Runs decision explain on an authz_server replica (an admin_api.replicas.ReplicaExplainer); None: not configured.
    explainer: Any = None

    @classmethod
    def from_settings(cls, settings: MeshSettings, kek: Kek, explainer: Any = None) -> "ServiceConfig":
        return cls(public_url=settings.public_url,
                   multiple_consumer_secrets=settings.multiple_consumer_secrets,
                   max_consumer_secrets=settings.max_consumer_secrets,
                   authorization_code_seconds=settings.authorization_code_seconds,
                   login_guard=LoginGuard(settings.login_max_failures, settings.login_lockout_seconds),
                   kek=kek, explainer=explainer)

    def require_kek(self) -> Kek:
        if self.kek is None:
            raise FailedPrecondition("no key-encryption key is configured: secrets cannot be stored")
        return self.kek


def of_session(session: Session) -> ServiceConfig:
    """The ServiceConfig of the Store that opened `session` (defaults for a bare session)."""
    config = session.info.get(CONFIG_KEY)
    return config if isinstance(config, ServiceConfig) else ServiceConfig()
