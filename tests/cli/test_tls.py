"""`portcullis` against an admin_api whose REST port serves TLS (PORTCULLIS_TLS=auto: a
local CA made by mesh.local_ca): the server's certificate is checked against the CA file
from --ca-file, PORTCULLIS_TLS_CA_FILE, the profile's ca-file or, with PORTCULLIS_TLS=auto,
the data directory's local CA; anything else is refused with what to set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.local_ca import ensure_local_ca
from portcullis_cli.main import main
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls import TlsSettings
from tests.cli.conftest import start_admin_api


@pytest.fixture(scope="module")
def tls_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshSettings]:
    data_dir = tmp_path_factory.mktemp("cli-tls-admin")
    ensure_local_ca(data_dir / "tls")
    with start_admin_api(data_dir, tls=TlsSettings(mode="auto")) as settings:
        yield settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PORTCULLIS_* setting of the developer's; an empty config file of the test's own."""
    for name in [n for n in os.environ if n.startswith("PORTCULLIS_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "config.yaml"
    monkeypatch.setenv("PORTCULLIS_CLI_CONFIG", str(config))
    return config


def https(settings: MeshSettings) -> str:
    return f"https://{settings.host}:{settings.admin_rest_port}"


def ca_file(settings: MeshSettings) -> Path:
    files = settings.tls_files
    assert files is not None
    return files.ca_file


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_https_with_the_ca_file_works(tls_admin: MeshSettings, clean_env: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--server", https(tls_admin), "--ca-file", str(ca_file(tls_admin)),
                         "--token-file", str(tls_admin.admin_token_file), "apis", "list", "-o", "json")
    assert code == 0, err
    assert out.strip().startswith("[")


def test_ca_file_from_the_mesh_setting_and_from_a_profile(tls_admin: MeshSettings, clean_env: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    common = ["--server", https(tls_admin), "--token-file", str(tls_admin.admin_token_file)]
    monkeypatch.setenv("PORTCULLIS_TLS_CA_FILE", str(ca_file(tls_admin)))
    assert run(capsys, *common, "apis", "list")[0] == 0
    monkeypatch.delenv("PORTCULLIS_TLS_CA_FILE")
    code, _, err = run(capsys, "profiles", "set", "tls", "--server", https(tls_admin), "--token-file",
                       str(tls_admin.admin_token_file), "--ca-file", str(ca_file(tls_admin)), "--use")
    assert code == 0, err
    assert "ca-file" in clean_env.read_text()
    code, _, err = run(capsys, "apis", "list")
    assert code == 0, err


def test_without_the_ca_the_certificate_is_not_trusted(tls_admin: MeshSettings, clean_env: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--server", https(tls_admin), "--token-file", str(tls_admin.admin_token_file),
                       "apis", "list")
    assert code == 1
    assert "certificate is not trusted" in err and "--ca-file" in err and "PORTCULLIS_TLS_CA_FILE" in err


def test_a_certificate_of_another_ca_is_refused(tls_admin: MeshSettings, clean_env: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    stranger = ensure_local_ca(tmp_path / "stranger")["ca"].cert_file
    code, _, err = run(capsys, "--server", https(tls_admin), "--ca-file", str(stranger),
                       "--token-file", str(tls_admin.admin_token_file), "apis", "list")
    assert code == 1 and "certificate is not trusted" in err


def test_plain_http_to_the_tls_port_says_to_use_https(tls_admin: MeshSettings, clean_env: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--server", f"http://{tls_admin.host}:{tls_admin.admin_rest_port}",
                       "--token-file", str(tls_admin.admin_token_file), "apis", "list")
    assert code == 1 and "use https://" in err


def test_a_missing_or_bad_ca_file_is_a_clear_error(tls_admin: MeshSettings, clean_env: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--server", https(tls_admin), "--token-file", str(tls_admin.admin_token_file)]
    code, _, err = run(capsys, *common, "--ca-file", str(tmp_path / "nope.pem"), "apis", "list")
    assert code == 1 and f"the CA file {tmp_path / 'nope.pem'} does not exist" in err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    code, _, err = run(capsys, *common, "--ca-file", str(garbage), "apis", "list")
    assert code == 1 and "is not a readable PEM CA bundle" in err


def test_tls_auto_finds_the_local_mesh_by_itself(tls_admin: MeshSettings, clean_env: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make run PORTCULLIS_TLS=auto` leaves: https on the default host, the local CA and
    the bootstrap token in the data directory; no option needed."""
    monkeypatch.setenv("PORTCULLIS_TLS", "auto")
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(tls_admin.data_dir))
    monkeypatch.setenv("PORTCULLIS_ADMIN_REST_PORT", str(tls_admin.admin_rest_port))
    code, out, err = run(capsys, "apis", "list", "-o", "json")
    assert code == 0, err
    # Without PORTCULLIS_TLS the default is http, which the TLS port does not answer.
    monkeypatch.delenv("PORTCULLIS_TLS")
    code, _, err = run(capsys, "apis", "list")
    assert code == 1 and "use https://" in err
