"""Units of work over the database: read transactions, and write transactions that
append their change records (the outbox) and the current admin call's audit record, and
wake Watch streams after commit."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from admin_api.audit import log as audit_log
from admin_api.config import CONFIG_KEY, ServiceConfig
from admin_api.db.engine import Database
from admin_api.errors import AlreadyExists, Unavailable
from admin_api.store import listener, outbox
from admin_api.store.notifier import ChangeNotifier
from admin_api.sync_records.entities import EntityRow

log = logging.getLogger(__name__)


def new_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def _database_reachable() -> Iterator[None]:
    """A database that cannot be reached (down, restarting, connection dropped) is
    Unavailable (gRPC UNAVAILABLE, HTTP 503): the client may retry, nothing was changed
    (a write whose connection broke before COMMIT rolled back). The pool checks each
    connection before use (pool_pre_ping), so the first call after the server is back
    works again without restarting admin_api."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        log.warning("database unavailable: %s", exc.orig if isinstance(exc, DBAPIError) else exc)
        raise Unavailable("the database is unavailable; try again shortly") from exc


class Writer:
    """A write transaction: change entities through it so that each change is recorded."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.last_revision = 0

    def upsert(self, row: EntityRow) -> int:
        self.session.add(row)
        self.last_revision = outbox.append(self.session, row, outbox.UPSERT)
        return self.last_revision

    def delete(self, row: EntityRow) -> int:
        self.session.delete(row)
        self.session.flush()
        self.last_revision = outbox.append(self.session, row, outbox.DELETE)
        return self.last_revision


class Store:
    def __init__(self, db: Database, notifier: ChangeNotifier, config: ServiceConfig | None = None) -> None:
        self.db = db
        self.notifier = notifier
        self.config = config or ServiceConfig()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _database_reachable(), self.db.read_session() as session, session.begin():
            session.info[CONFIG_KEY] = self.config
            yield session

    @contextmanager
    def write(self) -> Iterator[Writer]:
        with _database_reachable(), self.db.write_session() as session:
            session.info[CONFIG_KEY] = self.config
            writer = Writer(session)
            try:
                with session.begin(), audit_log.in_transaction(session):
                    yield writer
                    if writer.last_revision and not self.db.is_sqlite:
                        listener.announce(session, writer.last_revision)
            except IntegrityError as exc:
                # The services check uniqueness first with a precise message; this is the
                # safety net for two concurrent writers racing past that check.
                log.info("write refused by a database constraint: %s", exc.orig)
                raise AlreadyExists("the change conflicts with an existing entity") from exc
        if writer.last_revision:
            self.notifier.notify(writer.last_revision)
