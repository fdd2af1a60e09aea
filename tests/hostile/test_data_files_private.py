"""The data directory is the owner's alone (issue 18, item 6): admin_api makes it 0700 and
the SQLite database and its WAL 0600 (they hold password hashes and token metadata), the
mesh renders Envoy's bootstrap (with the gateway token) 0600, also under a umask of 022
and in a directory that existed wider; and the bootstrap admin token is not written to a
log: admin_api prints where the file is, and the token itself only to a terminal."""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from admin_api.app import announce_admin_token
from mesh import envoy_config
from portcullis_shared.settings import MeshSettings

from .admin_world import AdminWorld, start_admin_world, stop_admin_world


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AdminWorld, Path, str]]:
    data_dir = tmp_path_factory.mktemp("private") / "var"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    old_umask = os.umask(0o022)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                world = start_admin_world(data_dir)
            # A write, so that the WAL exists.
            response = world.rest.post("/v1/applications", json={"name": "private"}, headers=world.auth)
            assert response.status_code == 201, response.text
            yield world, data_dir, stderr.getvalue()
            stop_admin_world(world)
    finally:
        os.umask(old_umask)


def test_the_data_directory_is_the_owners_only(started):
    _, data_dir, _ = started
    assert _mode(data_dir) == 0o700


@pytest.mark.parametrize("name", ["portcullis.db", "portcullis.db-wal", "admin-token", "sync-token", "gateway-token",
                                  "kek"])
def test_the_database_its_wal_and_the_credential_files_are_0600(started, name):
    _, data_dir, _ = started
    path = data_dir / name
    assert path.exists(), sorted(p.name for p in data_dir.iterdir())
    assert _mode(path) == 0o600, oct(_mode(path))


def test_the_rendered_envoy_bootstrap_is_0600_in_a_0700_directory(tmp_path: Path):
    data_dir = tmp_path / "mesh-var"
    old_umask = os.umask(0o022)
    try:
        path = envoy_config.write(MeshSettings(data_dir=data_dir), gateway_token="pcg_test")
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    assert _mode(data_dir) == 0o700


def test_the_bootstrap_admin_token_is_not_printed_to_a_log(started):
    world, data_dir, stderr = started
    assert world.token not in stderr
    assert str(data_dir / "admin-token") in stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bootstrap_admin_token_is_shown_on_a_terminal(tmp_path: Path):
    terminal, log = _Terminal(), io.StringIO()
    announce_admin_token("pca_secret", tmp_path / "admin-token", terminal)
    announce_admin_token("pca_secret", tmp_path / "admin-token", log)
    assert "pca_secret" in terminal.getvalue()
    assert "pca_secret" not in log.getvalue() and str(tmp_path / "admin-token") in log.getvalue()


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "192.0.2.10"])
def test_envoys_admin_interface_listens_on_loopback_only(tmp_path: Path, host: str):
    """Envoy's admin answers /config_dump and /quitquitquit without a credential: it is
    never rendered off loopback, whatever host the rest of the mesh is given."""
    import yaml

    text = envoy_config.render(MeshSettings(data_dir=tmp_path, host=host), gateway_token="pcg_test")
    assert yaml.safe_load(text)["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
