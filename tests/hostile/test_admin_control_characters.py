"""Control characters in the admin API's identifier fields, over REST: a name, version,
context segment, header name, tier or organization id that ends in a newline (Python's
`$` matches before a final "\\n", so `re.match(r"^...$")` let them through) or carries
another control character is refused with 400 naming the field, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from .admin_world import AdminWorld, start_admin_world, stop_admin_world

# The trailing newline first: the case `$` let through. The rest: CR, TAB, NUL, vertical
# tab, form feed, DEL, a C1 control (NEL) and the Unicode line separator.
CONTROL_CHARACTERS = ["\n", "\r", "\r\n", "\t", "\x00", "\x0b", "\x0c", "\x7f", "\x85", "\u2028"]

GOOD_API = {"name": "Control", "version": "1.0.0", "context": "/control", "production_endpoint": "http://127.0.0.1:8091"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminWorld]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
        admin = start_admin_world(tmp_path_factory.mktemp("admin-control-characters"))
        yield admin
        stop_admin_world(admin)


def _api(**overrides: Any) -> dict[str, Any]:
    return {**GOOD_API, **overrides}


# (field named in the error, path, body builder taking the hostile suffix)
FIELDS = [
    ("name", "/v1/apis", lambda c: _api(name="Pizza" + c)),
    ("version", "/v1/apis", lambda c: _api(version="1.0.0" + c)),
    ("context", "/v1/apis", lambda c: _api(context="/pizza" + c)),
    ("header", "/v1/apis", lambda c: _api(security={"api_key": {"header": "apikey" + c}})),
    ("query_param", "/v1/apis", lambda c: _api(security={"api_key": {"query_param": "apikey" + c}})),
    ("path", "/v1/apis", lambda c: _api(resources=[{"method": "GET", "path": "/menu" + c}])),
    ("backend_jwt.header", "/v1/apis",
     lambda c: _api(backend_jwt={"enabled": True, "header": "X-JWT" + c})),
    ("throttling_tier", "/v1/applications", lambda c: {"name": "app", "throttling_tier": "Unlimited" + c}),
    ("id", "/v1/organizations", lambda c: {"id": "orgb" + c, "name": "Org B"}),
]
CASES = [(field, path, build, char) for field, path, build in FIELDS for char in CONTROL_CHARACTERS]


@pytest.mark.parametrize(("field", "path", "build", "char"), CASES,
                         ids=[f"{field}-{char.encode('unicode_escape').decode()}" for field, _, _, char in CASES])
def test_a_control_character_in_an_identifier_is_refused(world: AdminWorld, field, path, build, char):
    before = world.fingerprint()
    response = world.rest.post(path, content=json.dumps(build(char)).encode(),
                               headers={**world.auth, "content-type": "application/json"})
    assert response.status_code == 400, response.text[:500]
    assert field in response.json()["detail"], response.json()
    assert world.fingerprint() == before


@pytest.mark.parametrize(("field", "path", "build"), FIELDS, ids=[field for field, _, _ in FIELDS])
def test_the_same_request_without_the_control_character_is_accepted(world: AdminWorld, field, path, build):
    """The control row: each body is valid but for the hostile suffix."""
    body = build("")
    unique = field.replace(".", "-").replace("_", "-")
    if path == "/v1/apis" and field not in ("name", "context"):
        body.update(name=f"Control {unique}", context=f"/control-{unique}")
    response = world.rest.post(path, content=json.dumps(body).encode(),
                               headers={**world.auth, "content-type": "application/json"})
    assert response.status_code == 201, response.text[:500]


# Every identifier pattern of the admin API, with a value it accepts: the value followed
# by a newline must be refused too (the patterns the REST cases above do not reach).
def _patterns() -> list[tuple[str, Any, str]]:
    from admin_api.services import (application_keys, backend_jwt_config, key_manager_rules, labels,
                                    organizations, users, validation)
    return [
        ("SCOPE_RE", users.SCOPE_RE, "read:menu"),
        ("ORGANIZATION_ID_RE", organizations.ORGANIZATION_ID_RE, "orgb"),
        ("CONSUMER_KEY_RE", application_keys.CONSUMER_KEY_RE, "consumer-key"),
        ("CLAIM_RE", key_manager_rules.CLAIM_RE, "azp"),
        ("CLAIM_NAME_RE", backend_jwt_config.CLAIM_NAME_RE, "email"),
        ("labels._KEY", labels._KEY, "team"),
        ("labels._VALUE", labels._VALUE, "payments"),
        ("ROLE_RE", validation.ROLE_RE, "admin"),
        ("SUBJECT_RE", validation.SUBJECT_RE, "alice@example.com"),
        ("HOST_LABEL_RE", validation.HOST_LABEL_RE, "www"),
        ("PATH_PARAM_RE", validation.PATH_PARAM_RE, "{id}"),
    ]


@pytest.mark.parametrize("index", range(11))
def test_no_identifier_pattern_accepts_a_trailing_newline(index: int):
    label, pattern, good = _patterns()[index]
    assert pattern.fullmatch(good), label
    for char in CONTROL_CHARACTERS:
        assert not pattern.fullmatch(good + char), (label, char)
