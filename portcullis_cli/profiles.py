"""`portcullis login|logout` and `portcullis profiles list|set|use|delete`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from portcullis_cli.config import ConfigFile, LoginCredentials
from portcullis_cli.login import browser_login, password_login, token_answer
from portcullis_cli.session import Session, session_of
from portcullis_shared.scopes import ADMIN_SCOPE


def admin_scope(scope: str | None) -> str:
    """The scopes asked for at login: the admin API's audience first, then those given."""
    return " ".join(dict.fromkeys([ADMIN_SCOPE, *(scope or "").split()]))


def _session() -> Session:
    return session_of(click.get_current_context())


@click.command()
@click.option("--client-id", required=True, envvar="PORTCULLIS_CLIENT_ID",
              help="consumer key of an application key at the resident key manager [env PORTCULLIS_CLIENT_ID]")
@click.option("--client-secret", envvar="PORTCULLIS_CLIENT_SECRET",
              help="its consumer secret; omit for a public client [env PORTCULLIS_CLIENT_SECRET]")
@click.option("--username", help="password grant: the user (the password is asked for, or "
              "read from PORTCULLIS_PASSWORD)")
@click.option("--browser/--no-browser", "open_browser", default=True,
              help="authorization code: open the login page in a browser, or only print its URL")
@click.option("--port", default=0, show_default=True,
              help="authorization code: the loopback port to listen on (0: any free port)")
@click.option("--scope", help=f"scopes to ask for, space-separated ({ADMIN_SCOPE} is always asked for)")
def login(client_id: str, client_secret: str | None, username: str | None, open_browser: bool, port: int,
          scope: str | None) -> None:
    """Sign in as a user of the resident key manager and keep the token for this profile.

    With --username: the password grant. Without: the authorization code with PKCE, the
    login page in a browser and the answer on http://127.0.0.1:PORT/callback (the
    application key's callback URL must be http://127.0.0.1:<any port>/callback).
    The application key must be first-party (settings.first_party, set by an admin): the
    admin API takes only tokens with the scope portcullis:admin, which only those get.
    """
    scope = admin_scope(scope)
    session = _session()
    connection = session.connection()
    assert connection.config is not None
    if username:
        password = os.environ.get("PORTCULLIS_PASSWORD") or click.prompt(f"password for {username}",
                                                                          hide_input=True)
        credentials = password_login(connection.server, client_id=client_id, client_secret=client_secret,
                                     username=username, password=password, scope=scope,
                                     verify=connection.verify())
    else:
        def announce(url: str) -> None:
            click.echo(f"Open this page to sign in (waiting for the answer):\n  {url}", err=True)

        credentials = browser_login(connection.server, client_id=client_id, client_secret=client_secret,
                                    scope=scope, port=port, open_browser=open_browser, announce=announce,
                                    verify=connection.verify())
    path = connection.config.credentials_path(connection.profile)
    credentials.write(path)
    click.echo(f"signed in to {connection.server} (profile {connection.profile}); token saved in {path}", err=True)


@click.command()
@click.option("--client-id", required=True, envvar="PORTCULLIS_CLIENT_ID", help="the consumer key")
@click.option("--client-secret", envvar="PORTCULLIS_CLIENT_SECRET", help="its consumer secret "
              "[env PORTCULLIS_CLIENT_SECRET]")
@click.option("--username", help="the password grant for this user (password from PORTCULLIS_PASSWORD or asked); "
              "without it: client_credentials")
@click.option("--scope", help="scopes to ask for, space-separated")
@click.option("-o", "--output", type=click.Choice(["token", "json"]), default="token", show_default=True,
              help="the access token alone, or the whole token answer")
def token(client_id: str, client_secret: str | None, username: str | None, scope: str | None, output: str) -> None:
    """Print an access token of an application key (client_credentials, or password
    with --username), for calling APIs through the gateway. Nothing is saved."""
    connection = _session().connection()
    if username:
        password = os.environ.get("PORTCULLIS_PASSWORD") or click.prompt(f"password for {username}",
                                                                          hide_input=True)
        answer = token_answer(connection.server, client_id=client_id, client_secret=client_secret,
                              form={"grant_type": "password", "username": username, "password": password},
                              scope=scope, verify=connection.verify())
    else:
        answer = token_answer(connection.server, client_id=client_id, client_secret=client_secret,
                              form={"grant_type": "client_credentials"}, scope=scope, verify=connection.verify())
    click.echo(json.dumps(answer, indent=2) if output == "json" else answer["access_token"])


@click.command()
def logout() -> None:
    """Forget the token `portcullis login` saved for this profile."""
    connection = _session().connection()
    assert connection.config is not None
    path = connection.config.credentials_path(connection.profile)
    if LoginCredentials.read(path) is None:
        click.echo(f"profile {connection.profile} has no saved login", err=True)
        return
    path.unlink()
    click.echo(f"signed out (profile {connection.profile})", err=True)


def _config() -> ConfigFile:
    connection = _session().connection()
    assert connection.config is not None
    return connection.config


@click.group("profiles")
def profiles_group() -> None:
    """Named connections in the config file."""


@profiles_group.command("list")
def list_profiles() -> None:
    config = _config()
    for name, settings in config.profiles.items():
        mark = "*" if name == config.current_profile else " "
        where = settings.get("server", "")
        token = settings.get("token-file") or ("login" if config.credentials_path(name).exists() else "")
        click.echo(f"{mark} {name}\t{where}\t{token}")


@profiles_group.command("set")
@click.argument("name")
@click.option("--server", "profile_server", metavar="URL", help="admin REST base URL")
@click.option("--token-file", "profile_token_file", metavar="FILE", help="a file holding the bearer token")
@click.option("--ca-file", "profile_ca_file", metavar="FILE",
              help="the CA bundle the server's https certificate is checked against")
@click.option("--use/--no-use", default=False, help="also make it the current profile")
def set_profile(name: str, profile_server: str | None, profile_token_file: str | None, profile_ca_file: str | None,
                use: bool) -> None:
    """Create or change a profile."""
    config = _config()
    settings = config.profiles.setdefault(name, {})
    if profile_server:
        settings["server"] = profile_server
    if profile_token_file:
        settings["token-file"] = profile_token_file
    if profile_ca_file:
        settings["ca-file"] = str(Path(profile_ca_file).expanduser().resolve())
    if use or config.current_profile is None:
        config.current_profile = name
    config.save()


@profiles_group.command("use")
@click.argument("name")
def use_profile(name: str) -> None:
    config = _config()
    if name not in config.profiles:
        raise click.BadParameter(f"no profile {name!r} in {config.path}", param_hint="NAME")
    config.current_profile = name
    config.save()


@profiles_group.command("delete")
@click.argument("name")
def delete_profile(name: str) -> None:
    config = _config()
    if config.profiles.pop(name, None) is None:
        raise click.BadParameter(f"no profile {name!r} in {config.path}", param_hint="NAME")
    if config.current_profile == name:
        config.current_profile = None
    config.save()
    config.credentials_path(name).unlink(missing_ok=True)


def register(cli: click.Group) -> None:
    cli.add_command(login)
    cli.add_command(logout)
    cli.add_command(token)
    cli.add_command(profiles_group)
