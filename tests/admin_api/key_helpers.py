"""Helpers for the key-management tests: a store with a KEK and key manager records (the
external provider they talk to is the tests' one fake IdP, tests/fake_idp.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from admin_api.app import open_store
from admin_api.access.caller import Caller
from admin_api.crypto.kek import Kek
from admin_api.services import key_managers
from admin_api.config import ServiceConfig
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import key_managers_pb2

PUBLIC_URL = "http://127.0.0.1:18081"


def open_key_store(database: Path | str, **config: Any) -> Store:
    """On a SQLite file (a Path) or any database URL (a str)."""
    settings = {"public_url": PUBLIC_URL, "kek": Kek.generate(), **config}
    url = f"sqlite:///{database}" if isinstance(database, Path) else database
    return open_store(url, ServiceConfig(**settings))


def external_km(store: Store, caller: Caller, **fields: Any) -> key_managers_pb2.KeyManager:
    values: dict[str, Any] = {"name": "Keycloak", "type": key_managers_pb2.KeyManager.KEYCLOAK,
                              "issuer": "https://idp.example.com/realms/demo",
                              "jwks_uri": "https://idp.example.com/realms/demo/certs", **fields}
    message = key_managers_pb2.KeyManager()
    for name, value in values.items():
        if isinstance(value, list):
            getattr(message, name).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return key_managers.create_key_manager(store, key_managers_pb2.CreateKeyManagerRequest(key_manager=message),
                                           caller)


def resident(store: Store, caller: Caller) -> key_managers_pb2.KeyManager:
    listed = key_managers.list_key_managers(store, key_managers_pb2.ListKeyManagersRequest(), caller).key_managers
    return next(km for km in listed if km.type == key_managers_pb2.KeyManager.RESIDENT)
