"""A real admin_api (create_admin_app: migrated SQLite in a temporary directory, gRPC on
127.0.0.1:0) with its REST app in-process, and a fingerprint of the database so that a
test can prove a refused request changed nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import grpc
from starlette.testclient import TestClient

from admin_api.app import AdminApp, create_admin_app
from admin_api.transports.rest import create_app
from portcullis_shared.settings import MeshSettings


@dataclass
class AdminWorld:
    app: AdminApp
    rest: TestClient
    channel: grpc.Channel
    token: str

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")]

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    @property
    def database(self) -> Path:
        return self.app.settings.data_dir / "portcullis.db"

    def fingerprint(self) -> dict[str, tuple[int, str]]:
        """Per table: row count and a digest of every row (the change log included)."""
        with sqlite3.connect(self.database) as connection:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            result = {}
            for table in sorted(tables):
                rows = sorted(repr(row) for row in connection.execute(f'SELECT * FROM "{table}"'))
                result[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        connection.close()
        return result

    def raw_unary(self, full_method: str):
        """A unary call that sends bytes as they are and returns the raw answer."""
        return self.channel.unary_unary(full_method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def start_admin_world(data_dir: Path) -> AdminWorld:
    settings = MeshSettings(data_dir=data_dir)
    app = create_admin_app(settings, grpc_port=0)
    app.start()
    # Large enough to send past the server's 4 MiB limit on purpose.
    channel = grpc.insecure_channel(f"127.0.0.1:{app.grpc_port}", options=[("grpc.max_send_message_length", 16 * 1024 * 1024)])
    rest = TestClient(create_app(app.dispatcher), raise_server_exceptions=False)
    rest.__enter__()
    return AdminWorld(app, rest, channel, settings.admin_token_file.read_text(encoding="utf-8").strip())


def stop_admin_world(world: AdminWorld) -> None:
    world.rest.__exit__(None, None, None)
    world.channel.close()
    world.app.stop()
