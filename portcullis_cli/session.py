"""What every command of one invocation shares: the resolved connection and one client."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import click

from portcullis_cli.client import AdminClient
from portcullis_cli.config import Connection, LoginCredentials, resolve, static_token
from portcullis_cli.login import refreshed


@dataclass
class Session:
    server: str | None = None
    token: str | None = None
    token_file: str | None = None
    profile: str | None = None
    config: str | None = None
    ca_file: str | None = None
    _connection: Connection | None = None
    _client: AdminClient | None = field(default=None, repr=False)

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = resolve(os.environ, server=self.server, token=self.token,
                                       token_file=self.token_file, profile=self.profile, config=self.config,
                                       ca_file=self.ca_file)
        return self._connection

    def _token(self) -> str | None:
        connection = self.connection()
        token = static_token(connection)
        if token is not None or connection.credentials_path is None:
            return token
        credentials = LoginCredentials.read(connection.credentials_path)
        if credentials is None:
            return None
        if credentials.expired:
            credentials = refreshed(credentials, connection.verify())
            credentials.write(connection.credentials_path)
        return credentials.access_token

    def client(self) -> AdminClient:
        if self._client is None:
            connection = self.connection()
            self._client = AdminClient(connection.server, self._token, verify=connection.verify())
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def session_of(context: click.Context) -> Session:
    session = context.find_object(Session)
    assert session is not None, "the root command makes the session"
    return session
