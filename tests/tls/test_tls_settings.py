"""PORTCULLIS_TLS* settings: how the certificate files resolve, and the secure-by-default
rule (no plaintext server off loopback unless PORTCULLIS_ALLOW_PLAINTEXT=true)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portcullis_shared.config import SettingsError
from portcullis_shared.settings import REPO_ROOT, MeshSettings
from portcullis_shared.tls import CertKey, PlaintextRefused, TlsSettings, is_loopback, plaintext_refusal


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("::ffff:127.0.0.1", True), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False),
    ("192.168.1.10", False), ("gateway.example", False), ("", False),
], ids=lambda value: str(value) or "empty")
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("bind_host", ["0.0.0.0", "::", "10.0.0.7", "portcullis.example"])
def test_refuses_plaintext_off_loopback_and_says_why(bind_host: str) -> None:
    with pytest.raises(PlaintextRefused) as refused:
        plaintext_refusal(TlsSettings(bind_host=bind_host), "admin_api")
    message = str(refused.value)
    assert f"admin_api would listen on {bind_host} without TLS" in message
    assert "PORTCULLIS_TLS=on" in message and "PORTCULLIS_ALLOW_PLAINTEXT=true" in message


@pytest.mark.parametrize("tls", [
    TlsSettings(),                                                    # loopback, plaintext: make run
    TlsSettings(bind_host="0.0.0.0", allow_plaintext=True),           # said out loud
    TlsSettings(bind_host="0.0.0.0", mode="on", ca_file=Path("/ca.pem")),
    TlsSettings(bind_host="0.0.0.0", mode="auto"),
], ids=["loopback", "allow-plaintext", "tls-on", "tls-auto"])
def test_allows(tls: TlsSettings) -> None:
    plaintext_refusal(tls, "admin_api")


def test_off_has_no_files(tmp_path: Path) -> None:
    assert MeshSettings(data_dir=tmp_path).tls_files is None
    assert MeshSettings(data_dir=tmp_path).public_url.startswith("http://")


def test_auto_resolves_into_the_data_directory_and_explicit_files_win(tmp_path: Path) -> None:
    settings = MeshSettings(data_dir=tmp_path, tls=TlsSettings(
        mode="auto", gateway_cert_file=Path("/etc/gw.pem"), gateway_key_file=Path("/etc/gw-key.pem")))
    files = settings.tls_files
    assert files is not None
    assert files.ca_file == tmp_path / "tls" / "ca.pem"
    assert files.require("admin") == CertKey(tmp_path / "tls" / "admin.pem", tmp_path / "tls" / "admin-key.pem")
    assert files.require("gateway") == CertKey(Path("/etc/gw.pem"), Path("/etc/gw-key.pem"))
    assert settings.public_url == f"https://127.0.0.1:{settings.admin_rest_port}"


def test_on_needs_a_ca() -> None:
    with pytest.raises(SettingsError, match="PORTCULLIS_TLS_CA_FILE"):
        TlsSettings(mode="on").files(Path("/data"))


def test_on_names_the_missing_identity() -> None:
    files = TlsSettings(mode="on", ca_file=Path("/ca.pem")).files(Path("/data"))
    assert files is not None
    with pytest.raises(SettingsError, match="PORTCULLIS_TLS_AUTHZ_CERT_FILE and PORTCULLIS_TLS_AUTHZ_KEY_FILE"):
        files.require("authz")


def test_half_a_pair_is_refused() -> None:
    with pytest.raises(SettingsError, match="set both PORTCULLIS_TLS_ADMIN_CERT_FILE and PORTCULLIS_TLS_ADMIN_KEY_FILE"):
        TlsSettings(mode="on", ca_file=Path("/ca.pem"), admin_cert_file=Path("/a.pem")).files(Path("/data"))


def test_read_from_the_environment() -> None:
    settings = MeshSettings.from_env({"PORTCULLIS_TLS": "ON", "PORTCULLIS_TLS_CA_FILE": "/x/ca.pem",
                                      "PORTCULLIS_BIND_HOST": "0.0.0.0", "PORTCULLIS_ALLOW_PLAINTEXT": "false"})
    assert settings.tls == TlsSettings(mode="on", ca_file=Path("/x/ca.pem"), bind_host="0.0.0.0")
    with pytest.raises(SettingsError, match="PORTCULLIS_TLS must be one of off, on, auto"):
        MeshSettings.from_env({"PORTCULLIS_TLS": "maybe"})


def _clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTCULLIS_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("module, what", [("admin_api", "admin_api (REST and gRPC)"),
                                          ("authz_server", "authz_server (ext_authz gRPC)")])
def test_a_server_bound_off_loopback_without_tls_refuses_to_start(module: str, what: str, tmp_path: Path) -> None:
    # Refused before anything is bound or written: the data directory stays empty.
    data_dir = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", module], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env=_clean_env(PORTCULLIS_BIND_HOST="0.0.0.0", PORTCULLIS_DATA_DIR=str(data_dir),
                                         PORTCULLIS_AUTHZ_WORKERS="1"))
    assert done.returncode == 2, done.stderr
    assert f"refusing to start: {what} would listen on 0.0.0.0 without TLS" in done.stderr
    assert not data_dir.exists()
