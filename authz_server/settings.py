"""authz_server's settings: the mesh's plus its own environment variables, read once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from portcullis_shared.settings import MeshSettings, SettingsError


def _non_negative_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class AuthzSettings:
    mesh: MeshSettings
    admin_grpc_target: str          # PORTCULLIS_ADMIN_GRPC_TARGET
    sync_token: str | None          # PORTCULLIS_SYNC_TOKEN (else the sync token file)
    trusted_hops: int = 0           # PORTCULLIS_TRUSTED_HOPS
    workers: int = 16               # PORTCULLIS_AUTHZ_WORKERS: gRPC thread pool size

    @property
    def listen_address(self) -> str:
        return f"{self.mesh.host}:{self.mesh.authz_port}"

    def __repr__(self) -> str:  # never print the token
        return (
            f"AuthzSettings(listen={self.listen_address}, admin_grpc_target={self.admin_grpc_target}, "
            f"sync_token={'<set>' if self.sync_token else '<file ' + str(self.mesh.sync_token_file) + '>'}, "
            f"trusted_hops={self.trusted_hops}, workers={self.workers})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AuthzSettings":
        env = os.environ if env is None else env
        mesh = MeshSettings.from_env(env)
        return cls(
            mesh=mesh,
            admin_grpc_target=env.get("PORTCULLIS_ADMIN_GRPC_TARGET") or f"127.0.0.1:{mesh.admin_grpc_port}",
            sync_token=(env.get("PORTCULLIS_SYNC_TOKEN") or "").strip() or None,
            trusted_hops=_non_negative_int(env, "PORTCULLIS_TRUSTED_HOPS", 0),
            workers=_non_negative_int(env, "PORTCULLIS_AUTHZ_WORKERS", 16, minimum=1),
        )
