"""A real PostgreSQL server (Debian's `postgresql` package) for the tests.

The session starts one server in a temporary directory on a free loopback port; each
test gets a database of its own, copied from a template that is already migrated
(CREATE DATABASE ... TEMPLATE takes ~0.1 s where migrating takes seconds). PostgreSQL
refuses to run as root: as root, initdb and the server run as the `postgres` user.
The session's server is tuned for tests (no fsync, no synchronous commit): a crash
loses its newest commits, fine for a throw-away cluster; `init(durable=True)` keeps both. It can be stopped and started again on the same port
to test admin_api while the database is away.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

_TEMPLATE = "portcullis_template"
_SUPERUSER = "portcullis"


def find_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: PORTCULLIS_TEST_PG_BIN, Debian's newest
    /usr/lib/postgresql/N/bin, or the PATH."""
    configured = os.environ.get("PORTCULLIS_TEST_PG_BIN")
    candidates = [configured] if configured else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        self._as_postgres = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="portcullis-pg-"))
        self.data = self.directory / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)

    # -- the server ---------------------------------------------------------------------

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=120)

    def init(self, *, durable: bool = False) -> "PostgresServer":
        """`durable`: keep fsync and synchronous commit (a test that crashes the server and
        counts what survived); otherwise both are off, which loses the newest commits in a
        crash of the server (`stop("immediate")`) but makes the suite faster."""
        self._run(str(self._bin / "initdb"), "-D", str(self.data), "-U", _SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join([
                "listen_addresses = '127.0.0.1'",
                f"port = {self.port}",
                f"unix_socket_directories = '{self.directory}'",
                *([] if durable else ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]),
                "max_connections = 300",
                "log_min_messages = warning",
            ]) + "\n")
        return self

    def start(self) -> "PostgresServer":
        result = self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "log"),
                           "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {result.stdout}{result.stderr}"
                               f"{self.log_tail()}")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`fast` lets it shut down cleanly; `immediate` is like a crash of the server."""
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self) -> str:
        path = self.directory / "log"
        try:
            return path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    # -- databases ----------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=_SUPERUSER, dbname="postgres",
                               autocommit=True, connect_timeout=10)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._connect().close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def make_template(self) -> None:
        """A database migrated to the newest schema that every test database copies."""
        from admin_api.db.engine import open_database
        from admin_api.migrations import upgrade

        with self._connect() as connection:
            connection.execute(f"CREATE DATABASE {_TEMPLATE}")
        db = open_database(self.url(_TEMPLATE))
        try:
            upgrade(db.engine)
        finally:
            db.dispose()

    def create_database(self, *, migrated: bool = True) -> str:
        """A new empty or migrated database; returns its SQLAlchemy URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        template = f" TEMPLATE {_TEMPLATE}" if migrated else ""
        with self._connect() as connection:
            connection.execute(f"CREATE DATABASE {name}{template} STRATEGY FILE_COPY")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self._connect() as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
