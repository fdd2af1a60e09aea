"""`portcullis apis import-openapi SPEC`: an API from an OpenAPI 3.0 or 3.1 document.

Mapped: `info` (title, version, description; the context from `x-portcullis-context`,
else `/` + the title in lower case), `paths` (each method a resource with its path
template), `security` and `securitySchemes` (an apiKey in a header or the query is the
API key scheme; oauth2, openIdConnect and http bearer are OAuth2, with each operation's
scopes as its resource's scopes; an operation with `security: []` is open), `servers`
(the first a production endpoint, the one marked sandbox the sandbox endpoint; server
variables take their defaults). Everything else is listed as not mapped: it is never
dropped silently.

The API is then made real through `apply`'s plan (so importing again updates it, and
--dry-run shows the plan), or written as a portcullis/v1 file with --write. Either way
the API names the document (`openapi: FILE`), so apply also uploads it as the API's
definition (ApiService/SetApiDefinition: the developer portal shows it), and again only
when it changed.
"""

from __future__ import annotations

import json
import re
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from portcullis_cli.client import CliError

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_DOCUMENTATION = {"summary", "description", "operationId", "tags", "externalDocs"}
_DESCRIBED_ONLY = ("parameters", "requestBody", "responses", "callbacks")
_BEARER_TYPES = {"oauth2", "openIdConnect"}


class NotOpenApi(CliError):
    pass


@dataclass
class Imported:
    api: dict[str, Any]
    unmapped: list[str] = field(default_factory=list)


def read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise NotOpenApi(f"{path}: cannot read it as {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(document, dict):
        raise NotOpenApi(f"{path}: not an OpenAPI document (no mapping at the top)")
    version = str(document.get("openapi", ""))
    if not re.fullmatch(r"3\.[01]\.\d+", version):
        found = f"swagger {document['swagger']}" if "swagger" in document else f"openapi {version or '(none)'}"
        raise NotOpenApi(f"{path}: OpenAPI 3.0 or 3.1 expected, found {found}")
    return document


def _server_url(server: dict[str, Any]) -> str:
    url = str(server.get("url", ""))
    for name, variable in (server.get("variables") or {}).items():
        url = url.replace("{" + name + "}", str(variable.get("default", "")))
    return url.rstrip("/")


def _is_sandbox(server: dict[str, Any]) -> bool:
    marked = str(server.get("x-portcullis-environment", "")).lower()
    return marked == "sandbox" or (not marked and "sandbox" in str(server.get("description", "")).lower())


def _endpoints(document: dict[str, Any], unmapped: list[str]) -> dict[str, str]:
    endpoints: dict[str, str] = {}
    for index, server in enumerate(document.get("servers") or []):
        url = _server_url(server)
        slot = "sandbox_endpoint" if _is_sandbox(server) else "production_endpoint"
        if not re.match(r"^https?://", url):
            unmapped.append(f"servers[{index}] {url!r}: not an absolute http(s) URL (give --{slot.replace('_', '-')})")
        elif slot in endpoints:
            unmapped.append(f"servers[{index}] {url}: one {slot.split('_')[0]} endpoint per API (kept "
                            f"{endpoints[slot]})")
        else:
            endpoints[slot] = url
    return endpoints


@dataclass
class _Security:
    api_key_header: str | None = None
    api_key_query: str | None = None
    oauth2: bool = False


def _schemes(document: dict[str, Any], used: set[str], unmapped: list[str]) -> _Security:
    security = _Security()
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    for name in sorted(used):
        scheme = schemes.get(name)
        where = f"components.securitySchemes.{name}"
        if not isinstance(scheme, dict):
            unmapped.append(f"security scheme {name!r}: not defined in components.securitySchemes")
            continue
        kind, located = scheme.get("type"), scheme.get("in")
        if kind == "apiKey" and located in ("header", "query"):
            slot = "api_key_header" if located == "header" else "api_key_query"
            if getattr(security, slot) not in (None, scheme.get("name")):
                unmapped.append(f"{where}: a second API key {located} ({scheme.get('name')}); Portcullis "
                                f"takes one (kept {getattr(security, slot)})")
            else:
                setattr(security, slot, str(scheme.get("name") or "apikey"))
        elif kind in _BEARER_TYPES or (kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer"):
            security.oauth2 = True
        else:
            detail = f"apiKey in {located}" if kind == "apiKey" else f"{kind} {scheme.get('scheme', '')}".strip()
            unmapped.append(f"{where}: {detail} is not a credential Portcullis checks")
    return security


def _resource(method: str, path: str, operation: dict[str, Any], root_security: list[Any] | None,
              document: dict[str, Any], used: set[str], unmapped: list[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {"method": method.upper(), "path": path}
    requirements = operation.get("security", root_security)
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    if requirements is None or requirements == [] or {} in requirements:
        resource["open"] = True
        if requirements is None:
            unmapped.append(f"paths.{path}.{method}: no security requirement, so the resource is open")
    else:
        scopes: list[str] = []
        for requirement in requirements:
            for name, wanted in requirement.items():
                used.add(name)
                if (schemes.get(name) or {}).get("type") in _BEARER_TYPES:
                    scopes += [s for s in wanted if s not in scopes]
        if scopes:
            resource["scopes"] = scopes
    for key in operation:
        if key not in _DOCUMENTATION and key not in _DESCRIBED_ONLY and key != "security":
            unmapped.append(f"paths.{path}.{method}.{key}: not mapped")
    return resource


def convert(document: dict[str, Any], *, name: str | None = None, version: str | None = None,
            context: str | None = None, production_endpoint: str | None = None,
            sandbox_endpoint: str | None = None) -> Imported:
    unmapped: list[str] = []
    info = document.get("info") or {}
    title = name or str(info.get("title") or "")
    if not title:
        raise NotOpenApi("info.title is missing: give --name")
    api: dict[str, Any] = {"name": title, "version": version or str(info.get("version") or "1.0.0")}
    api["context"] = context or str(info.get("x-portcullis-context") or "/" + re.sub(r"[^a-z0-9-]+", "-",
                                                                                      title.lower()).strip("-"))
    if info.get("description"):
        api["description"] = str(info["description"])
    api.update(_endpoints(document, unmapped))
    if production_endpoint:
        api["production_endpoint"] = production_endpoint
    if sandbox_endpoint:
        api["sandbox_endpoint"] = sandbox_endpoint

    root_security = document.get("security")
    used: set[str] = set()
    resources = []
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            unmapped.append(f"paths.{path}: not a path item")
            continue
        for key, value in item.items():
            if key in HTTP_METHODS:
                resources.append(_resource(key, path, value or {}, root_security, document, used, unmapped))
            elif key == "parameters":
                continue  # counted below with the operations' own
            elif key not in _DOCUMENTATION:
                reason = ("Portcullis resources take GET, PUT, POST, DELETE, OPTIONS, HEAD and PATCH"
                          if key == "trace" else "not mapped")
                unmapped.append(f"paths.{path}.{key}: {reason}")
    api["resources"] = resources
    described = sum(1 for item in (document.get("paths") or {}).values() if isinstance(item, dict)
                    for key, value in item.items()
                    if key == "parameters" or (key in HTTP_METHODS and any(k in (value or {}) for k in _DESCRIBED_ONLY)))
    if described:
        unmapped.append(f"paths: the parameters, request bodies and responses of {described} path item(s) or "
                        "operation(s) are described only: Portcullis does not validate requests or responses")
    security = _schemes(document, used, unmapped)
    schemes: dict[str, Any] = {}
    if security.api_key_header or security.api_key_query:
        api_key: dict[str, Any] = {"header": security.api_key_header or "apikey"}
        if security.api_key_query:
            api_key["query_param"] = security.api_key_query
        else:
            api_key["disable_query_param"] = True
        if not security.api_key_header:
            unmapped.append("the API key is taken from the query only in the document: Portcullis also "
                            "reads the header 'apikey'")
        schemes["api_key"] = api_key
    if security.oauth2:
        schemes["oauth2"] = {}
    if schemes:
        api["security"] = schemes
    for key in ("webhooks", "jsonSchemaDialect"):
        if key in document:
            unmapped.append(f"{key}: not mapped")
    components = document.get("components") or {}
    for key, value in components.items():
        if key != "securitySchemes":
            unmapped.append(f"components.{key} ({len(value)}): not used by Portcullis")
    return Imported(api, unmapped)


@click.command("import-openapi")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="the API's name (default: info.title)")
@click.option("--version", "api_version", help="its version (default: info.version)")
@click.option("--context", help="its base path (default: info.x-portcullis-context, else /<title>)")
@click.option("--production-endpoint", metavar="URL", help="override the production server")
@click.option("--sandbox-endpoint", metavar="URL", help="override the sandbox server")
@click.option("--publish", is_flag=True, help="publish the API too")
@click.option("--write", "write_to", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="write a portcullis/v1 file with the API instead of importing it")
@click.option("--dry-run", is_flag=True, help="show the plan and stop")
def import_openapi(spec: Path, name: str | None, api_version: str | None, context: str | None,
                   production_endpoint: str | None, sandbox_endpoint: str | None, publish: bool,
                   write_to: Path | None, dry_run: bool) -> None:
    """Create (or update) an API from an OpenAPI 3.0 or 3.1 document; what cannot be
    mapped is listed on stderr."""
    from portcullis_cli.declarative.commands import apply_objects
    from portcullis_cli.declarative.kinds import API_VERSION
    from portcullis_cli.declarative.spec import DEFINITION_FIELD

    imported = convert(read_document(spec), name=name, version=api_version, context=context,
                       production_endpoint=production_endpoint, sandbox_endpoint=sandbox_endpoint)
    if publish:
        imported.api["lifecycle_state"] = "PUBLISHED"
    if imported.unmapped:
        click.echo(f"Not mapped ({len(imported.unmapped)}):", err=True)
        for line in imported.unmapped:
            click.echo(f"  {line}", err=True)
    if write_to is not None:
        imported.api[DEFINITION_FIELD] = os.path.relpath(spec.resolve(), write_to.resolve().parent)
        write_to.write_text(yaml.safe_dump({"apiVersion": API_VERSION, "apis": [imported.api]}, sort_keys=False))
        click.echo(f"wrote {write_to}", err=True)
        return
    imported.api[DEFINITION_FIELD] = str(spec)
    apply_objects({"apis": [imported.api]}, source=str(spec), dry_run=dry_run)


def register(apis: click.Group) -> None:
    apis.add_command(import_openapi)
