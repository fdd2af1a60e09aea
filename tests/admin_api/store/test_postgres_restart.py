"""PostgreSQL restarted under a running store: calls meanwhile are Unavailable (503 /
UNAVAILABLE, never a 500), nothing acknowledged is lost, and the same store works again
once the server is back, without being reopened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from admin_api.app import open_store
from admin_api.db import models
from admin_api.errors import Unavailable
from admin_api.store import outbox
from admin_api.store.unit_of_work import Store
from tests.admin_api.conftest import create_application
from tests.postgres_server import PostgresServer, find_bin_dir


@pytest.fixture
def own_server(postgres_server) -> Iterator[PostgresServer]:
    """A server of its own (this test crashes it), durable like a production one."""
    server = PostgresServer(find_bin_dir())
    try:
        server.init(durable=True).start().wait_ready()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def store(own_server: PostgresServer) -> Iterator[Store]:
    store = open_store(own_server.create_database(migrated=False))
    yield store
    store.db.dispose()


def test_calls_while_the_database_restarts_are_unavailable_then_work_again(own_server, store):
    kept = create_application(store, name="Before")
    own_server.stop("immediate")          # like a crash: no clean shutdown
    with pytest.raises(Unavailable):
        create_application(store, name="During")
    with pytest.raises(Unavailable):
        with store.read() as session:
            outbox.current_revision(session)
    own_server.start().wait_ready()
    after = create_application(store, name="After")
    with store.read() as session:
        names = session.scalars(select(models.Application.name).order_by(models.Application.name)).all()
        revisions = session.scalars(select(models.ChangeRecord.revision).order_by(models.ChangeRecord.revision)).all()
    assert names == ["After", "Before"] and kept.id != after.id
    assert revisions == list(range(1, len(revisions) + 1))     # the refused write took no revision
