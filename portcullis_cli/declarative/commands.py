"""`portcullis apply|diff|dump`: the organization kept in `portcullis/v1` files."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from portcullis_cli.client import AdminClient
from portcullis_cli.declarative.apply import Applier, ApplyFailed, check_references
from portcullis_cli.declarative.dump import dump_document
from portcullis_cli.declarative.kinds import labels_available
from portcullis_cli.declarative.loader import load_params, yaml_files
from portcullis_cli.declarative.plan import Plan, make_plan
from portcullis_cli.declarative.spec import Desired, from_objects, parse
from portcullis_cli.declarative.state import Current, read_current, read_definitions
from portcullis_cli.session import session_of

_FILES = click.option("-f", "--file", "targets", multiple=True, required=True, metavar="FILE|DIR",
                      type=click.Path(exists=True, path_type=Path),
                      help="a portcullis/v1 YAML file, or a folder of them (repeatable)")
_PARAMS = click.option("--params", "params_files", multiple=True, metavar="FILE",
                       type=click.Path(exists=True, dir_okay=False, path_type=Path),
                       help="values for ${name} in the files (repeatable; later files win)")
_ENVIRONMENT = click.option("--environment", metavar="NAME",
                            help="the section of `environments:` in the params files to use")


def _desired(targets: tuple[Path, ...], params_files: tuple[Path, ...], environment: str | None) -> Desired:
    params = load_params(list(params_files), environment)
    files = [path for target in targets for path in yaml_files(target)]
    if not files:
        raise click.BadParameter("no *.yaml or *.yml files there", param_hint="-f")
    return parse(files, params)


def _plan(client: AdminClient, desired: Desired, current: Current, prune: bool) -> Plan:
    if prune and not desired.labels:
        raise click.UsageError("--prune deletes only objects that carry the files' labels, and the files have "
                               "none: add `labels: {team: NAME}` to them")
    if desired.labels and not labels_available():
        raise ApplyFailed("the files have labels, and this server has no LabelService to keep them")
    read_definitions(client, current, desired)
    plan = make_plan(desired, current, prune=prune)
    missing = check_references(plan, current)
    if missing:
        raise ApplyFailed("the files refer to objects that do not exist, nothing was changed:\n  "
                          + "\n  ".join(missing))
    return plan


def _show(plan: Plan) -> None:
    if not plan.changes and not plan.unchangeable:
        click.echo("No changes: the organization matches the files.")
        return
    for step in plan.steps:
        if step.action != "keep" or step.changes:
            click.echo(step.describe())
    click.echo(plan.summary())


@click.command()
@_FILES
@_PARAMS
@_ENVIRONMENT
@click.option("--dry-run", is_flag=True, help="show the plan and stop")
@click.option("--prune", is_flag=True, help="also delete objects that carry the files' labels but are not in them")
def apply(targets: tuple[Path, ...], params_files: tuple[Path, ...], environment: str | None,
          dry_run: bool, prune: bool) -> None:
    """Make the organization match the files: the plan first, then the changes.

    Idempotent: a second apply finds nothing to do. Newly generated API keys and consumer
    secrets are printed once. Objects are put under the files' `labels`, and --prune
    deletes only objects that carry them (so two teams can own their own files).
    """
    _apply(_desired(targets, params_files, environment), dry_run, prune)


def apply_objects(sections: dict[str, list[dict]], *, source: str, dry_run: bool, base: Path = Path(".")) -> None:
    """Apply objects a command made (import-openapi) as if a file in `base` held them."""
    _apply(from_objects(sections, source, base), dry_run, prune=False)


def _apply(desired: Desired, dry_run: bool, prune: bool) -> None:
    client = session_of(click.get_current_context()).client()
    current = read_current(client)
    plan = _plan(client, desired, current, prune)
    _show(plan)
    if dry_run or not plan.changes:
        return
    applier = Applier(client, current, desired.labels, say=lambda line: click.echo(line, err=True),
                      shown_once=lambda line: click.echo(f"shown once: {line}"))
    done = applier.run(plan)
    click.echo(f"Applied: {done} change(s).", err=True)


@click.command()
@_FILES
@_PARAMS
@_ENVIRONMENT
@click.option("--prune", is_flag=True, help="show what apply --prune would delete too")
def diff(targets: tuple[Path, ...], params_files: tuple[Path, ...], environment: str | None, prune: bool) -> None:
    """Show what `apply` would change (the plan), changing nothing."""
    desired = _desired(targets, params_files, environment)
    client = session_of(click.get_current_context()).client()
    _show(_plan(client, desired, read_current(client), prune))


@click.command()
@click.option("--output-file", "-O", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="write to FILE instead of stdout")
@click.option("--selector", metavar="KEY=VALUE,...", help="only objects carrying these labels (written as the "
              "file's labels)")
def dump(output_file: Path | None, selector: str | None) -> None:
    """Write the organization as a portcullis/v1 file (secrets as {from_env: NAME})."""
    labels = {}
    for part in filter(None, (selector or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{part!r}: expected KEY=VALUE", param_hint="--selector")
        labels[key.strip()] = value.strip()
    current = read_current(session_of(click.get_current_context()).client())
    text = yaml.safe_dump(dump_document(current, labels), sort_keys=False, allow_unicode=True)
    if output_file is None:
        click.echo(text, nl=False)
    else:
        output_file.write_text(text)


def register(cli: click.Group) -> None:
    cli.add_command(apply)
    cli.add_command(diff)
    cli.add_command(dump)
