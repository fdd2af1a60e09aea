"""How `portcullis` connects: exit codes, tokens, profiles, and `login` (password grant,
and the authorization code with PKCE answered on a loopback redirect)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from portcullis_cli.main import main
from tests.cli.conftest import Deployment

PASSWORD = "a long password 1"


def portcullis(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).parent / "portcullis"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60,
                          env={**clean, **(env or {})}, **kwargs)


def test_console_script_exit_codes(cli: Deployment) -> None:
    common = ["--server", cli.server, "--token-file", str(cli.token_file), *cli.tls_args]
    done = portcullis(*common, "apis", "list", "-o", "json")
    assert done.returncode == 0, done.stderr
    refused = portcullis(*common, "apis", "get", "no-such-api")
    assert refused.returncode == 1 and refused.stderr.startswith("error: 404 not_found:")
    usage = portcullis(*common, "apis", "frobnicate")
    assert usage.returncode == 2 and "No such command 'frobnicate'" in usage.stderr
    missing = portcullis(*common, "apis", "get")
    assert missing.returncode == 2 and "Missing argument 'ID'" in missing.stderr
    bad_choice = portcullis(*common, "api-keys", "generate", "x", "--environment", "moon")
    assert bad_choice.returncode == 2


def test_no_or_bad_token_is_refused_with_exit_code_1(cli: Deployment) -> None:
    anonymous = cli.run("apis", "list", token=False)
    assert anonymous.code == 1 and "401 unauthenticated" in anonymous.err
    wrong = cli.run("--token", "pca_wrong", "apis", "list", token=False)
    assert wrong.code == 1 and "401" in wrong.err


def test_unreachable_server_is_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--server", "http://127.0.0.1:9", "--token", "x", "apis", "list"])
    assert code == 1 and "cannot reach the admin API at http://127.0.0.1:9" in capsys.readouterr().err


def test_malformed_option_value_is_exit_code_1_before_any_request(cli: Deployment) -> None:
    result = cli.run("apis", "create", "--name", "x", "--resources", "[unclosed")
    assert result.code == 1 and "--resources: not valid YAML or JSON" in result.err
    result = cli.run("applications", "list", "--page-size", "lots")
    assert result.code == 2  # paging is the CLI's business: not an option of list


def test_token_precedence_and_environment(cli: Deployment, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    token = cli.token_file.read_text().strip()
    monkeypatch.setenv("PORTCULLIS_SERVER", cli.server)
    monkeypatch.setenv("PORTCULLIS_TOKEN", token)
    assert cli.run("apis", "list", token=False).code == 0
    # --token wins over the environment.
    assert cli.run("--token", "pca_wrong", "apis", "list", token=False).code == 1
    monkeypatch.delenv("PORTCULLIS_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    monkeypatch.setenv("PORTCULLIS_TOKEN_FILE", str(token_file))
    assert cli.run("apis", "list", token=False).code == 0
    empty = tmp_path / "empty"
    empty.write_text("")
    result = cli.run("--token-file", str(empty), "apis", "list", token=False)
    assert result.code == 1 and "is empty" in result.err


def test_local_mesh_token_is_the_last_resort(cli: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(cli.settings.data_dir))
    assert cli.run("apis", "list", token=False).code == 0


def test_profiles(cli: Deployment, tmp_path: Path) -> None:
    assert cli.run("profiles", "set", "local", "--server", cli.server, "--token-file", str(cli.token_file),
                   *cli.tls_args).code == 0
    assert cli.run("profiles", "set", "nowhere", "--server", "http://127.0.0.1:9").code == 0
    listing = cli.run("profiles", "list")
    assert listing.out.splitlines()[0].startswith("* local")
    # The current profile is used when no --server is given.
    assert main(["--config", str(cli.config), "apis", "list", "-o", "json"]) == 0
    assert main(["--config", str(cli.config), "--profile", "nowhere", "apis", "list"]) == 1
    assert cli.run("profiles", "use", "nowhere").code == 0
    assert main(["--config", str(cli.config), "apis", "list"]) == 1
    unknown = main(["--config", str(cli.config), "--profile", "missing", "apis", "list"])
    assert unknown == 1
    assert cli.run("profiles", "delete", "nowhere").code == 0
    assert "nowhere" not in cli.run("profiles", "list").out


@pytest.fixture
def resident_user(cli: Deployment) -> dict[str, str]:
    """A publisher and an application owned by them with two resident clients: a
    confidential one for the password grant and a public one with a loopback callback."""
    username = f"pat-{uuid.uuid4().hex[:6]}"
    cli.ok("users", "create", "--username", username, "--password", PASSWORD, "--roles", "publisher")
    app = cli.ok("applications", "create", "--name", f"cli-{username}", "--owner", username)
    confidential = cli.ok("application-keys", "generate", app["id"], "--set",
                          "settings.grant_types=password,refresh_token", "--set", "settings.first_party=true")
    public = cli.ok("application-keys", "generate", app["id"], "--environment", "sandbox", "--settings",
                    '{"grant_types": ["authorization_code", "refresh_token"], "public_client": true, '
                    '"pkce_mandatory": true, "first_party": true, "callback_url": "http://127.0.0.1:8400/callback"}')
    return {"username": username, "client_id": confidential["key"]["consumer_key"],
            "client_secret": confidential["consumer_secret"], "public_client_id": public["key"]["consumer_key"]}


def test_login_with_the_password_grant(cli: Deployment, resident_user: dict[str, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_PASSWORD", PASSWORD)
    monkeypatch.setenv("PORTCULLIS_CLIENT_SECRET", resident_user["client_secret"])
    assert cli.run("profiles", "set", "pat", "--server", cli.server, "--use", *cli.tls_args).code == 0
    result = cli.run("login", "--client-id", resident_user["client_id"], "--username", resident_user["username"],
                     token=False)
    assert result.code == 0, result.err
    saved = cli.config.parent / "credentials" / "pat.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    # The user's token now answers for the profile: a publisher may list APIs but not users.
    assert main(["--config", str(cli.config), "apis", "list", "-o", "json"]) == 0
    assert main(["--config", str(cli.config), "users", "list"]) == 1
    assert cli.run("logout", token=False).code == 0 and not saved.exists()


def test_login_wrong_password_is_refused(cli: Deployment, resident_user: dict[str, str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_PASSWORD", "not it")
    result = cli.run("login", "--client-id", resident_user["client_id"], "--client-secret",
                     resident_user["client_secret"], "--username", resident_user["username"], token=False)
    assert result.code == 1 and "invalid_grant" in result.err


def test_login_with_a_client_that_is_not_first_party_is_refused(cli: Deployment, resident_user: dict[str, str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app = cli.ok("applications", "create", "--name", f"third-{resident_user['username']}",
                 "--owner", resident_user["username"])
    third = cli.ok("application-keys", "generate", app["id"], "--set", "settings.grant_types=password")
    monkeypatch.setenv("PORTCULLIS_PASSWORD", PASSWORD)
    result = cli.run("login", "--client-id", third["key"]["consumer_key"], "--client-secret",
                     third["consumer_secret"], "--username", resident_user["username"], token=False)
    assert result.code == 1 and "not first-party" in result.err, result.err


def test_login_in_the_browser_with_pkce(cli: Deployment, resident_user: dict[str, str]) -> None:
    script = Path(sys.executable).parent / "portcullis"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    login = subprocess.Popen([str(script), "--server", cli.server, *cli.tls_args, "--config", str(cli.config), "login",
                              "--client-id", resident_user["public_client_id"], "--no-browser"],
                             stderr=subprocess.PIPE, text=True, env=clean)
    try:
        assert login.stderr is not None
        assert login.stderr.readline().startswith("Open this page to sign in")
        url = login.stderr.readline().strip()
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert query["code_challenge_method"] == "S256" and query["redirect_uri"].startswith("http://127.0.0.1:")
        # The browser: the login form, then the redirect to the CLI's loopback listener.
        with httpx.Client(trust_env=False, timeout=10.0, verify=cli.verify) as browser:
            page = browser.get(url)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf, page.text
            form = browser.post(url, data={"username": resident_user["username"], "password": PASSWORD,
                                           "csrf_token": csrf.group(1)})
            assert form.status_code == 302, form.text
            landing = browser.get(form.headers["location"])
            assert landing.status_code == 200 and "Signed in" in landing.text
        assert login.wait(timeout=30) == 0, login.stderr.read()
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
        assert login.stderr is not None
        login.stderr.close()
    saved = cli.config.parent / "credentials" / "default.json"
    assert saved.exists()
    assert main(["--config", str(cli.config), "--server", cli.server, *cli.tls_args, "apis", "list", "-o", "json"]) == 0


def test_token_for_an_application_key(cli: Deployment, resident_user: dict[str, str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_CLIENT_SECRET", resident_user["client_secret"])
    monkeypatch.setenv("PORTCULLIS_PASSWORD", PASSWORD)
    result = cli.run("token", "--client-id", resident_user["client_id"], "--username", resident_user["username"],
                     token=False)
    assert result.code == 0, result.err
    access_token = result.out.strip()
    assert access_token.count(".") == 2  # a JWT, alone on stdout
    # A gateway token, not an admin one: the admin API wants the scope portcullis:admin.
    not_admin = cli.run("--token", access_token, "apis", "list", token=False)
    assert not_admin.code == 1 and "portcullis:admin" in not_admin.err
    admin = cli.run("token", "--client-id", resident_user["client_id"], "--username", resident_user["username"],
                    "--scope", "portcullis:admin", token=False)
    assert cli.run("--token", admin.out.strip(), "apis", "list", token=False).code == 0
    refused = cli.run("token", "--client-id", resident_user["client_id"], token=False)  # no client_credentials
    assert refused.code == 1 and "unauthorized_client" in refused.err
