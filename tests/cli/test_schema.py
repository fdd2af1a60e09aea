"""The CLI's nouns and verbs come from the admin protos, the server's own schema source."""

from __future__ import annotations

import httpx

from portcullis_cli.schema import noun_and_verb, nouns, operations
from tests.cli.conftest import Deployment


def test_nouns_of_the_admin_api() -> None:
    table = nouns()
    assert {"apis", "applications", "subscriptions", "api-keys", "application-keys", "consumer-secrets",
            "key-managers", "users", "scopes", "audit"} <= set(table)
    assert {"generate", "regenerate", "revoke", "associate", "dissociate"} <= set(table["api-keys"])
    assert set(table["apis"]) == {"create", "get", "list", "update", "delete", "lifecycle"}


def test_names_derive_from_the_rpc_names() -> None:
    assert noun_and_verb("ListThrottlingPolicies") == ("throttling-policies", "list")
    assert noun_and_verb("CreateThrottlingPolicy") == ("throttling-policies", "create")
    assert noun_and_verb("ExplainDecision") == ("decisions", "explain")
    assert noun_and_verb("ListGateways") == ("gateways", "list")
    assert noun_and_verb("ListAuditRecords") == ("audit", "list")
    assert noun_and_verb("CreateOrganizationAdminCredential") == ("organizations", "admin-credential")


def test_every_operation_is_a_route_of_the_servers_openapi(cli: Deployment) -> None:
    document = httpx.get(f"{cli.server}/openapi.json", trust_env=False, timeout=10.0, verify=cli.verify).json()
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    ours = {(op.http_method, op.path) for op in operations()}
    assert ours <= routes
    served = {r for r in routes if r[1].startswith("/v1/")}
    assert served == ours  # and the CLI misses none of them
