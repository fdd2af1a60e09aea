"""Where the CLI connects and with which token: flags, environment, named profiles.

The config file (`$PORTCULLIS_CLI_CONFIG`, default `~/.config/portcullis/config.yaml`):

    current-profile: local
    profiles:
      local: {server: "http://127.0.0.1:8081", token-file: var/admin-token}
      prod:  {server: "https://admin.example.com", ca-file: /etc/portcullis/ca.pem}

A profile without a token file uses the token `portcullis login` saved for it (in
`credentials/<profile>.json` beside the config file, mode 0600).

Precedence, first wins: --token, $PORTCULLIS_TOKEN, --token-file, $PORTCULLIS_TOKEN_FILE,
the profile's token file, the profile's login, and last `$PORTCULLIS_DATA_DIR/admin-token`
(default `var/admin-token`) when that file exists: the local mesh's bootstrap token, so
that the CLI works from the repository folder while `make run` is going.

TLS: an `https://` server's certificate is checked against a CA file, first wins:
--ca-file, $PORTCULLIS_TLS_CA_FILE (the mesh's own setting), the profile's `ca-file`,
and with $PORTCULLIS_TLS=auto the local CA the mesh made (`$PORTCULLIS_DATA_DIR/tls/ca.pem`);
without one, the public CAs (certifi). With $PORTCULLIS_TLS=on or auto, the default
server is `https://127.0.0.1:$PORTCULLIS_ADMIN_REST_PORT`. admin_api asks no client
certificate on its REST port, so the CLI presents none.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from portcullis_cli.client import CliError
from portcullis_shared.tls import AUTO_DIR_NAME
from portcullis_shared.tls_context import client_context

DEFAULT_PROFILE = "default"


class ConfigError(CliError):
    pass


def config_path(env: Mapping[str, str]) -> Path:
    if env.get("PORTCULLIS_CLI_CONFIG"):
        return Path(env["PORTCULLIS_CLI_CONFIG"]).expanduser()
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "portcullis" / "config.yaml"


def tls_mode(env: Mapping[str, str]) -> str:
    return (env.get("PORTCULLIS_TLS") or "off").strip().lower()


def default_server(env: Mapping[str, str]) -> str:
    scheme = "https" if tls_mode(env) in ("on", "auto") else "http"
    return f"{scheme}://127.0.0.1:{env.get('PORTCULLIS_ADMIN_REST_PORT') or 8081}"


def data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("PORTCULLIS_DATA_DIR") or "var")


@dataclass
class ConfigFile:
    path: Path
    current_profile: str | None
    profiles: dict[str, dict[str, str]]

    @classmethod
    def load(cls, path: Path) -> ConfigFile:
        if not path.exists():
            return cls(path, None, {})
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        profiles = data.get("profiles") or {}
        if not isinstance(data, dict) or not isinstance(profiles, dict) or not all(
                isinstance(p, dict) for p in profiles.values()):
            raise ConfigError(f"{path}: expected `profiles:` to map names to settings")
        return cls(path, data.get("current-profile"), {str(k): dict(v) for k, v in profiles.items()})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {"profiles": self.profiles}
        if self.current_profile:
            data = {"current-profile": self.current_profile, **data}
        self.path.write_text(yaml.safe_dump(data, sort_keys=False))

    def credentials_path(self, profile: str) -> Path:
        return self.path.parent / "credentials" / f"{profile}.json"


@dataclass
class LoginCredentials:
    """What `portcullis login` saved: an access token and, for public clients, a refresh token."""

    access_token: str
    expires_at: float
    token_endpoint: str
    client_id: str
    refresh_token: str | None = None

    @classmethod
    def read(cls, path: Path) -> LoginCredentials | None:
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: unreadable login credentials ({exc}); run `portcullis login` again") from exc

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created 0600 before anything is written into it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self.__dict__, handle)

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at - 30  # a margin for the call in flight


@dataclass
class Connection:
    server: str
    profile: str
    token: str | None = None
    token_file: Path | None = None
    credentials_path: Path | None = None
    config: ConfigFile | None = None
    ca_file: Path | None = None

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx checks an https server against: the CA file when one is set
        (that CA alone, as curl --cacert), otherwise the public CAs."""
        if self.ca_file is None:
            return True
        try:
            return client_context(self.ca_file)
        except FileNotFoundError as exc:
            raise ConfigError(f"the CA file {self.ca_file} does not exist") from exc
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"the CA file {self.ca_file} is not a readable PEM CA bundle: {reason}") from exc


def _read_token_file(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from exc
    if not token:
        raise ConfigError(f"the token file {path} is empty")
    return token


def _ca_file(env: Mapping[str, str], ca_file: str | None, settings: Mapping[str, str]) -> Path | None:
    chosen = ca_file or env.get("PORTCULLIS_TLS_CA_FILE") or settings.get("ca-file")
    if chosen:
        return Path(chosen).expanduser()
    if tls_mode(env) == "auto":
        return data_dir(env) / AUTO_DIR_NAME / "ca.pem"
    return None


def resolve(env: Mapping[str, str], *, server: str | None, token: str | None, token_file: str | None,
            profile: str | None, config: str | None, ca_file: str | None = None) -> Connection:
    config_file = ConfigFile.load(Path(config).expanduser() if config else config_path(env))
    name = profile or env.get("PORTCULLIS_PROFILE") or config_file.current_profile or DEFAULT_PROFILE
    if (profile or env.get("PORTCULLIS_PROFILE")) and name not in config_file.profiles:
        raise ConfigError(f"no profile {name!r} in {config_file.path}")
    settings = config_file.profiles.get(name, {})
    connection = Connection(server=server or env.get("PORTCULLIS_SERVER") or settings.get("server")
                            or default_server(env), profile=name, config=config_file,
                            ca_file=_ca_file(env, ca_file, settings))
    if token or env.get("PORTCULLIS_TOKEN"):
        connection.token = token or env["PORTCULLIS_TOKEN"]
        return connection
    file_setting = token_file or env.get("PORTCULLIS_TOKEN_FILE") or settings.get("token-file")
    if file_setting:
        connection.token_file = Path(file_setting).expanduser()
        return connection
    credentials = config_file.credentials_path(name)
    if credentials.exists():
        connection.credentials_path = credentials
        return connection
    local = data_dir(env) / "admin-token"
    if local.exists():
        connection.token_file = local
    return connection


def static_token(connection: Connection) -> str | None:
    if connection.token:
        return connection.token
    if connection.token_file:
        return _read_token_file(connection.token_file)
    return None
