"""A real admin_api process (REST and gRPC on free ports, its own SQLite file) per
deployment, and `portcullis` run against it in-process (the same `main` as the console
script) with its stdout, stderr and exit code."""

from __future__ import annotations

import io
import json
import os
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh import components
from mesh.local_ca import ensure_local_ca
from portcullis_cli.main import main
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls import AUTO_DIR_NAME, TlsSettings
from tests.integration.conftest import distinct_free_ports
from tests.integration.endpoints import admin_url, client_verify, suite_tls_mode


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@dataclass
class Deployment:
    """One admin_api and a `portcullis` bound to it by --server/--token-file."""

    settings: MeshSettings
    capsys: pytest.CaptureFixture[str] | None = None
    config: Path | None = None

    @property
    def server(self) -> str:
        return admin_url(self.settings)

    @property
    def token_file(self) -> Path:
        return self.settings.admin_token_file

    @property
    def tls_args(self) -> list[str]:
        """`--ca-file <the mesh's CA>` with TLS on (PORTCULLIS_TEST_TLS), else nothing: for
        the global option and for `profiles set`."""
        tls = self.settings.tls_files
        return [] if tls is None else ["--ca-file", str(tls.ca_file)]

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What a test's own HTTP client checks admin_api's certificate against."""
        return client_verify(self.settings)

    def run(self, *args: str, token: bool = True, stdin: str | None = None) -> Result:
        assert self.capsys is not None, "bind the deployment to a test first (the cli fixture)"
        self.capsys.readouterr()
        argv = ["--server", self.server]
        if token:
            argv += ["--token-file", str(self.token_file)]
        argv += self.tls_args
        if self.config is not None:
            argv += ["--config", str(self.config)]
        saved_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            code = main([*argv, *args])
        finally:
            sys.stdin = saved_stdin
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *args: str) -> Any:
        """Run with `-o json` and the parsed answer (asserting exit code 0)."""
        result = self.run(*args, "-o", "json")
        assert result.code == 0, f"portcullis {' '.join(args)}: {result.err}"
        return json.loads(result.out) if result.out.strip() else None

    def yaml(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.code == 0, result.err
        return yaml.safe_load(result.out)


@contextmanager
def start_admin_api(data_dir: Path, **settings_fields: Any) -> Iterator[MeshSettings]:
    """`settings_fields`: MeshSettings fields; TLS follows PORTCULLIS_TEST_TLS unless given
    (tests.integration.endpoints), with the local CA made first as the mesh's launcher does."""
    settings_fields.setdefault("tls", TlsSettings(mode=suite_tls_mode()))
    if settings_fields["tls"].mode == "auto":
        ensure_local_ca(data_dir / AUTO_DIR_NAME)
    rest, grpc = distinct_free_ports(2)
    settings = MeshSettings(data_dir=data_dir, admin_rest_port=rest, admin_grpc_port=grpc, **settings_fields)
    base_env = {name: value for name, value in os.environ.items() if not name.startswith("PORTCULLIS_")}
    env = components.child_env(settings, base_env)
    process = components.admin_api(settings, env, python=sys.executable, log_dir=data_dir / "logs")
    process.start()
    try:
        process.wait_ready()
        yield settings
    finally:
        process.stop()


@pytest.fixture(scope="session")
def deployment_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshSettings]:
    with start_admin_api(tmp_path_factory.mktemp("cli-admin"), multiple_consumer_secrets=True) as settings:
        yield settings


@pytest.fixture
def cli(deployment_settings: MeshSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Deployment:
    """The shared deployment: tests use names of their own, so they do not collide."""
    return Deployment(deployment_settings, capsys, tmp_path / "config.yaml")


@pytest.fixture
def fresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Deployment]:
    """An empty deployment of its own (for apply / dump / prune)."""
    with start_admin_api(tmp_path / "admin") as settings:
        yield Deployment(settings, capsys, tmp_path / "config.yaml")


@pytest.fixture
def second(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Deployment]:
    """Another empty deployment (dump from one, apply into the other)."""
    with start_admin_api(tmp_path / "admin-2") as settings:
        yield Deployment(settings, capsys, tmp_path / "config.yaml")
