"""The settings contract: every environment variable is declared once (portcullis_shared.
config `setting(...)`), documented in the README's "Ports and settings" tables exactly as
declared, and read only through the one reader."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

from portcullis_shared.config import Setting, SettingsError, SettingsGroup, declared, readme_row
from portcullis_shared.settings import REPO_ROOT, MeshSettings

PACKAGES = ("portcullis_shared", "authz_server", "admin_api", "mesh", "sample_backend")
# Modules that run something when imported (entry points, Alembic's environment).
NOT_IMPORTED = re.compile(r"(\.__main__$)|(\.migrations\b)")
# The one reader; the mesh and authz_server's supervisor, which hand their environment down
# to their children; a worker reading the fd of the socket its supervisor handed it (a
# private hand-over between two processes of one server, not a setting).
# authz_server/compiled: PORTCULLIS_COMPILED is read when the package is first imported,
# before any settings are (it decides which modules are imported at all).
READS_ENVIRONMENT = {"portcullis_shared/config.py", "mesh/runner.py", "authz_server/workers.py",
                     "authz_server/metrics/worker.py", "authz_server/compiled/__init__.py"}

PORTS_HEADER = ("what", "default", "variable")
OTHERS_HEADER = ("variable", "default", "meaning")


def _settings_groups() -> list[type[SettingsGroup]]:
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, package_name + "."):
            if not NOT_IMPORTED.search(module.name):
                importlib.import_module(module.name)
    groups, pending = [], list(SettingsGroup.__subclasses__())
    while pending:
        group = pending.pop()
        groups.append(group)
        pending.extend(group.__subclasses__())
    return groups


def _declared_settings() -> dict[str, Setting]:
    found: dict[str, Setting] = {}
    for group in _settings_groups():
        for _, declared_setting in declared(group):
            if found.setdefault(declared_setting.name, declared_setting) is not declared_setting:
                raise AssertionError(f"{declared_setting.name} is declared twice")
    return found


def _readme_tables() -> dict[tuple[str, ...], list[tuple[str, ...]]]:
    """The tables of the README's "Ports and settings" section, by header."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Ports and settings\n", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    tables: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    rows: list[tuple[str, ...]] | None = None
    for line in section.splitlines():
        if not line.startswith("|"):
            rows = None
            continue
        cells = tuple(cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1]))
        if rows is None:
            rows = tables.setdefault(cells, [])
        elif not set("".join(cells)) <= set("-:"):
            rows.append(cells)
    return tables


DECLARED = _declared_settings()
TABLES = _readme_tables()


def _expected(table_of_ports: bool) -> dict[str, tuple[str, str, str]]:
    return {name: readme_row(s) for name, s in DECLARED.items() if s.is_port == table_of_ports}


def _documented(header: tuple[str, ...], variable_column: int) -> dict[str, tuple[str, ...]]:
    rows = TABLES[header]
    documented = {row[variable_column].strip("`"): row for row in rows}
    assert len(documented) == len(rows), f"a variable has two rows in the README table {header}"
    return documented


@pytest.mark.parametrize(("header", "variable_column", "ports"), [
    pytest.param(PORTS_HEADER, 2, True, id="ports"),
    pytest.param(OTHERS_HEADER, 0, False, id="other-settings"),
])
def test_readme_settings_tables_match_the_declarations(header, variable_column, ports):
    expected, documented = _expected(ports), _documented(header, variable_column)
    undocumented = ["| " + " | ".join(expected[name]) + " |" for name in expected if name not in documented]
    assert not undocumented, "declared but not in the README (add these rows):\n" + "\n".join(undocumented)
    assert not set(documented) - set(expected), f"in the README but not declared: {set(documented) - set(expected)}"
    for name, row in documented.items():
        assert row == expected[name], f"the README's row for {name} differs from its declaration:\n" \
                                      f"README:   {row}\ndeclared: {expected[name]}"


def test_the_contract_test_sees_settings_of_both_servers():
    # Guards the discovery above: were it to find nothing, the table test would pass empty.
    assert {"PORTCULLIS_GATEWAY_PORT", "PORTCULLIS_DATABASE_URL", "PORTCULLIS_AUTHZ_WORKERS",
            "PORTCULLIS_BACKEND_JWT_ISSUER", "PORTCULLIS_JWKS_REFRESH_SECONDS"} <= set(DECLARED)
    assert len(TABLES[PORTS_HEADER]) >= 7 and len(TABLES[OTHERS_HEADER]) >= 20


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_every_setting_reads_its_variable_and_defaults_when_blank(name):
    declared_setting = DECLARED[name]
    assert declared_setting.read({}) == declared_setting.default_value()
    assert declared_setting.read({name: "  "}) == declared_setting.default_value()


def _reads_environment(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "os" and \
                any(alias.name in ("environ", "getenv") for alias in node.names):
            return True
    return False


def test_only_the_settings_reader_reads_the_environment():
    readers = set()
    for package_name in PACKAGES:
        for source in sorted((REPO_ROOT / package_name).rglob("*.py")):
            if _reads_environment(ast.parse(source.read_text(encoding="utf-8"))):
                readers.add(str(source.relative_to(REPO_ROOT)))
    assert readers == READS_ENVIRONMENT


def test_settings_are_read_once_into_a_frozen_value():
    env = {"PORTCULLIS_GATEWAY_PORT": "18080", "PORTCULLIS_PUBLIC_URL": "https://gw.example.com/"}
    settings = MeshSettings.from_env(env)
    env["PORTCULLIS_GATEWAY_PORT"] = "28080"
    assert (settings.gateway_port, settings.public_url) == (18080, "https://gw.example.com")
    with pytest.raises(AttributeError):
        settings.gateway_port = 1  # type: ignore[misc]


def test_a_child_process_reads_the_same_settings():
    settings = MeshSettings.from_env({"PORTCULLIS_DATA_DIR": "/tmp/x", "PORTCULLIS_MULTIPLE_CONSUMER_SECRETS": "yes",
                                      "PORTCULLIS_SYNC_HEARTBEAT_SECONDS": "0.5", "PORTCULLIS_PUBLIC_URL": "https://a"})
    assert MeshSettings.from_env(settings.as_env()) == settings


@pytest.mark.parametrize(("name", "raw"), [
    ("PORTCULLIS_GATEWAY_PORT", "70000"), ("PORTCULLIS_GATEWAY_PORT", "http"),
    ("PORTCULLIS_MULTIPLE_CONSUMER_SECRETS", "maybe"), ("PORTCULLIS_MAX_CONSUMER_SECRETS", "-1"),
    ("PORTCULLIS_SYNC_HEARTBEAT_SECONDS", "inf"), ("PORTCULLIS_SYNC_HEARTBEAT_SECONDS", "0"),
])
def test_a_malformed_variable_is_refused_by_name(name, raw):
    with pytest.raises(SettingsError, match=name):
        MeshSettings.from_env({name: raw})


def test_authz_settings_survive_the_trip_to_a_child_process():
    from authz_server.settings import AuthzSettings
    from portcullis_shared.config import as_env

    settings = AuthzSettings.from_env({"PORTCULLIS_AUTHZ_METRICS": "off", "PORTCULLIS_AUTHZ_WORKERS": "3",
                                       "PORTCULLIS_AUTHZ_FRONTEND": "grpcio", "PORTCULLIS_SYNC_TOKEN": "pcs_x"})
    assert AuthzSettings.from_env(as_env(settings)) == settings
    assert "pcs_x" not in repr(settings)
