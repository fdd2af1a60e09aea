"""`portcullis`: the root command, its connection options and the exit codes.

Exit codes: 0 done; 1 the server refused the request (its problem detail on stderr), it
could not be reached, or an input file is wrong; 2 a usage error (unknown command or
option, a missing argument).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from portcullis_cli import openapi_import, profiles
from portcullis_cli.client import CliError
from portcullis_cli.commands import noun_groups
from portcullis_cli.declarative import commands as declarative
from portcullis_cli.output import error
from portcullis_cli.session import Session

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--server", metavar="URL", help="admin REST base URL [env PORTCULLIS_SERVER; default "
              "http://127.0.0.1:$PORTCULLIS_ADMIN_REST_PORT]")
@click.option("--token", metavar="TOKEN", help="bearer token [env PORTCULLIS_TOKEN]")
@click.option("--token-file", metavar="FILE", help="a file holding the bearer token [env PORTCULLIS_TOKEN_FILE]")
@click.option("--profile", metavar="NAME", help="a profile of the config file [env PORTCULLIS_PROFILE]")
@click.option("--config", metavar="FILE", help="the config file [env PORTCULLIS_CLI_CONFIG; default "
              "~/.config/portcullis/config.yaml]")
@click.option("--ca-file", metavar="FILE", help="the CA bundle an https server's certificate is checked against "
              "[env PORTCULLIS_TLS_CA_FILE; the profile's ca-file; with PORTCULLIS_TLS=auto "
              "$PORTCULLIS_DATA_DIR/tls/ca.pem; default the public CAs]")
@click.pass_context
def cli(context: click.Context, server: str | None, token: str | None, token_file: str | None,
        profile: str | None, config: str | None, ca_file: str | None) -> None:
    """Manage Portcullis through its admin REST API.

    Nouns and verbs (`portcullis apis list`, `portcullis api-keys generate API_ID`) come
    from the admin protos; `apply`, `diff` and `dump` keep an organization in YAML files.
    """
    session = Session(server=server, token=token, token_file=token_file, profile=profile, config=config,
                      ca_file=ca_file)
    context.obj = session
    context.call_on_close(session.close)


for _group in noun_groups():
    cli.add_command(_group)
    if _group.name == "apis":
        openapi_import.register(_group)
profiles.register(cli)
declarative.register(cli)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="portcullis", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        return EXIT_REFUSED
    except click.Abort:
        error("aborted")
        return EXIT_REFUSED
    except CliError as exc:
        error(str(exc))
        return EXIT_REFUSED
    except BrokenPipeError:
        # `portcullis apis list | head`: the reader left; nothing more to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return EXIT_OK


def console_main() -> None:
    sys.exit(main())
