"""The denial contract: the public table is the class tree, and the README's reason-code
table says the same, both ways."""

from __future__ import annotations

import http
import re
import types

import pytest
import yaml

from authz_server import denials
from authz_server.denials import ALL_DENIALS, Denial, Forbidden, TokenInvalid, Unauthenticated
from mesh import envoy_config
from portcullis_shared.settings import REPO_ROOT, MeshSettings

ABSTRACT = (Denial, Unauthenticated, TokenInvalid, Forbidden)


def _readme_reason_codes() -> dict[str, int]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = re.split(r"\n##+ ", text.split("\n## Reason codes\n", 1)[1], maxsplit=1)[0]
    table: dict[str, int] = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z_]+)` \| (\d{3}) \|", line)
        if match:
            assert match.group(1) not in table, f"{match.group(1)} has two rows"
            table[match.group(1)] = int(match.group(2))
    return table


def _envoy_reason_codes() -> dict[str, int]:
    """The reason codes Envoy answers with itself (its local replies), by status."""
    config = yaml.safe_load(envoy_config.render(MeshSettings(), gateway_token="pcg_test"))
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    status_on_error = next(f["typed_config"]["status_on_error"]["code"] for f in manager["http_filters"]
                           if f["name"] == "envoy.filters.http.ext_authz")
    codes = {}
    for mapper in manager["local_reply_config"]["mappers"]:
        code = mapper["body_format_override"]["json_format"]["code"]
        expression = mapper["filter"]["extension_filter"]["typed_config"]["expression"]
        if "ext_authz_error" in expression:     # authz_server could not be asked
            codes[code] = http.HTTPStatus[re.sub(r"(?<!^)(?=[A-Z])", "_", status_on_error).upper()].value
        else:
            codes[code] = int(re.search(r"response\.code == (\d{3})", expression).group(1))
    return codes


README = _readme_reason_codes()
ENVOY = _envoy_reason_codes()


def test_readme_reason_codes_are_the_denial_classes_and_envoys_own():
    classes = {cls.code: cls.http_status for cls in ALL_DENIALS}
    envoy_only = {code: status for code, status in ENVOY.items() if code not in classes}
    # authz_server could not be asked; the API's backend could not be reached or was too slow.
    assert envoy_only == {"authz_unavailable": 503, "backend_unavailable": 503, "backend_timeout": 504}
    missing = {code: status for code, status in {**classes, **envoy_only}.items() if code not in README}
    assert not missing, f"denials the README's reason-code table lacks: {missing}"
    undeclared = {code: status for code, status in README.items() if code not in classes and code not in ENVOY}
    assert not undeclared, f"README reason codes nothing answers with: {undeclared}"
    for code, status in README.items():
        assert status == {**classes, **ENVOY}[code], f"{code}: the README says {status}"


def test_envoys_own_codes_agree_with_authz_servers():
    # Envoy answers bad_request for what it refuses before ext_authz runs: same code, same status.
    assert ENVOY["bad_request"] == denials.BadRequest.http_status


def test_the_table_is_derived_from_the_class_tree():
    def leaves(cls):
        for sub in cls.__subclasses__():
            yield from ([sub] if not sub.__subclasses__() else []) + list(leaves(sub))
    assert set(ALL_DENIALS) == set(leaves(Denial)) - set(ABSTRACT)
    assert denials.BackendJwtUnavailable in ALL_DENIALS   # the one the hand-kept table missed


@pytest.mark.parametrize("cls", ABSTRACT, ids=lambda c: c.__name__)
def test_abstract_bases_carry_no_code_and_are_never_raised(cls):
    assert cls.abstract and not {"code", "http_status", "default_message"} & set(vars(cls))
    assert not hasattr(cls, "code")
    with pytest.raises(TypeError, match="abstract"):
        cls()


@pytest.mark.parametrize("cls", ALL_DENIALS, ids=lambda c: c.code)
def test_every_denial_declares_its_own_code_status_and_message(cls):
    assert {"code", "http_status", "default_message"} <= set(vars(cls))
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.code) and cls().message == cls.default_message
    # The base says what the answer carries; the status says the same.
    if issubclass(cls, Unauthenticated):
        assert cls.http_status == 401
    if issubclass(cls, Forbidden):
        assert cls.http_status == 403
    assert bool(cls.oauth_error) == (issubclass(cls, TokenInvalid) or cls is denials.InsufficientScope)


def _declare(abstract: bool, **attributes):
    """A Denial subclass declared as if in authz_server/denials.py."""
    def body(namespace):
        namespace.update(__module__=denials.__name__, **attributes)
    return types.new_class("Broken", (Denial,), {"abstract": abstract}, body)


@pytest.mark.parametrize(("abstract", "attributes", "error"), [
    pytest.param(True, {"http_status": 429}, "is abstract and must not declare http_status", id="abstract-with-status"),
    pytest.param(False, {"code": "x"}, "must declare its own http_status, default_message", id="concrete-without-status"),
])
def test_a_malformed_denial_class_is_refused_when_declared(abstract, attributes, error):
    with pytest.raises(TypeError, match=error):
        _declare(abstract, **attributes)


def test_a_denial_outside_the_public_table_is_refused():
    with pytest.raises(TypeError, match="declared in authz_server.denials"):
        type("Elsewhere", (Denial,), {"code": "elsewhere", "http_status": 400, "default_message": "x"})
