"""The data directory and the files in it are the owner's alone: the SQLite database (and
its WAL) holds password hashes and token metadata, the directory holds credential files
and Envoy's rendered bootstrap (with the gateway token)."""

from __future__ import annotations

import os
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_directory(path: Path) -> Path:
    """Create `path` (and parents) if missing and make it 0700, also when it existed wider."""
    path.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    os.chmod(path, DIRECTORY_MODE)
    return path


def private_sqlite_file(url: str) -> None:
    """For a file-backed SQLite URL, create the database file 0600 before SQLite opens it
    (or narrow an existing one): SQLite gives its -wal and -shm files the database file's
    mode, so they are 0600 too. Other URLs are left alone."""
    from sqlalchemy.engine import make_url   # admin_api's dependency, not authz_server's

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return
    database = Path(parsed.database)
    database.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(database, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        sidecar = database.with_name(database.name + suffix)
        if sidecar.exists():
            os.chmod(sidecar, FILE_MODE)
