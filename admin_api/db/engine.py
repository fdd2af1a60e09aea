"""The engine and its two session factories: one for reads, one for writes.

SQLite runs in WAL mode (readers never block the writer) with foreign keys on. Write
transactions start with BEGIN IMMEDIATE so that a writer takes the database lock before
its first read: otherwise two writers that both read first would fail with "database is
locked" when the second tries to write. On PostgreSQL the row lock taken by the revision
counter UPDATE does the serializing (see admin_api.store.outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from portcullis_shared.private_files import private_sqlite_file

_WRITE_OPTION = "portcullis_write"
_SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Database:
    engine: Engine
    read_session: sessionmaker[Session]
    write_session: sessionmaker[Session]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    """An engine for `url` (not migrated yet: see admin_api.migrations.upgrade)."""
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _configure_sqlite(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    writer = engine.execution_options(**{_WRITE_OPTION: True})
    return Database(
        engine=engine,
        read_session=sessionmaker(engine, expire_on_commit=False),
        write_session=sessionmaker(writer, expire_on_commit=False),
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN instead of pysqlite's own
        # (which would never start a read transaction nor take the write lock early).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
