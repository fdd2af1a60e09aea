"""Fixtures for admin_api tests: a real, migrated database per test: a SQLite file, and
for the modules marked `both_databases` also a PostgreSQL database (each test runs
twice, ids [sqlite] and [postgresql]; tests/postgres_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from admin_api.app import open_store
from admin_api.access.caller import Caller, Role
from admin_api.services import api_keys, apis, applications, organizations
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.key_helpers import open_key_store

ADMIN = Caller(subject="alice", organization_id="default", role=Role.ADMIN)
OTHER_ADMIN = Caller(subject="mallory", organization_id="acme", role=Role.ADMIN)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "portcullis.db"


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


@pytest.fixture
def database_url(db_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The SQLite file's URL, or (parametrized) a fresh migrated PostgreSQL database's."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{db_path}"
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def store(database_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A store on that database; with the `key_store` mark, one that can keep secrets (a
    KEK) and derives the resident key manager from a public URL, as key management needs."""
    if request.node.get_closest_marker("key_store"):
        store = open_key_store(database_url)
    else:
        store = open_store(database_url)
    yield store
    store.db.dispose()


@pytest.fixture
def acme(store: Store) -> Caller:
    """A second organization with its own admin."""
    organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="acme", name="Acme"), ADMIN)
    return OTHER_ADMIN


def create_api(store: Store, caller: Caller = ADMIN, **fields: object) -> admin_pb2.Api:
    request = admin_pb2.CreateApiRequest(name="PizzaShack", version="1.0.0", context="/pizzashack",
                                         production_endpoint="http://127.0.0.1:8091",
                                         sandbox_endpoint="http://127.0.0.1:8092")
    for name, value in fields.items():
        if isinstance(value, list):
            request.ClearField(name)
            getattr(request, name).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return apis.create_api(store, request, caller)


def published_api(store: Store, caller: Caller = ADMIN, **fields: object) -> admin_pb2.Api:
    api = create_api(store, caller, **fields)
    return apis.change_api_lifecycle(
        store, admin_pb2.ChangeApiLifecycleRequest(id=api.id, target_state=admin_pb2.Api.PUBLISHED), caller)


def create_application(store: Store, caller: Caller = ADMIN, name: str = "Mobile") -> admin_pb2.Application:
    return applications.create_application(store, admin_pb2.CreateApplicationRequest(name=name), caller)


def generate_key(store: Store, api_id: str, caller: Caller = ADMIN, **fields: object) -> admin_pb2.GenerateApiKeyResponse:
    request = admin_pb2.GenerateApiKeyRequest(**{"api_id": api_id, "name": "web", **fields})  # type: ignore[arg-type]
    return api_keys.generate_api_key(store, request, caller)
