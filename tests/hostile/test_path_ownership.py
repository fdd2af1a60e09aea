"""Path ownership across organizations and APIs (issue 18, item 1).

A creator of the default organization once made an API with version `t` and context
`/{version}/orgb/bshop/1.0/debug`: the reserved `/t/` was checked before substitution, so
the API was served at `/t/orgb/bshop/1.0/debug`, inside organization orgb's API, and
answered orgb's requests there with its own open resource."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update

from admin_api.access.caller import Caller, Role
from admin_api.db import models
from admin_api.errors import AlreadyExists, InvalidArgument
from admin_api.migrations import alembic_config, upgrade
from admin_api.services import path_ownership
from authz_server.index.apis import compile_api
from authz_server.index.routes import RouteTable
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.conftest import ADMIN, OTHER_ADMIN, acme, create_api, database_url, db_path, store  # noqa: F401 (fixtures)

CREATOR = Caller(subject="carol", organization_id="default", role=Role.CREATOR)


def test_version_t_cannot_move_a_base_path_into_another_organization(store, acme):
    with pytest.raises(InvalidArgument) as caught:
        create_api(store, CREATOR, name="Takeover", version="t", context="/{version}/acme/bshop/1.0/debug")
    assert caught.value.field == "context"
    assert "'/t/acme/bshop/1.0/debug'" in caught.value.message and "reserved" in caught.value.message


def test_update_of_version_to_t_is_refused_too(store):
    from tests.admin_api.services.test_api_validation import _update

    api = create_api(store, name="Later", version="v1", context="/{version}/later")
    with pytest.raises(InvalidArgument) as caught:
        _update(store, api.id, ["version"], version="t")
    assert caught.value.field == "api.version" and "reserved" in caught.value.message


@pytest.mark.parametrize("context", ["/zz/..", "/a/./b", "/../x"], ids=["dot-dot-last", "dot-inner", "dot-dot-first"])
def test_context_with_dot_segments_is_refused(store, context):
    with pytest.raises(InvalidArgument) as caught:
        create_api(store, context=context)
    assert caught.value.field == "context" and "no request can reach" in caught.value.message


def test_an_api_under_another_apis_base_path_is_refused(store):
    outer = create_api(store, name="Shop", context="/shop")
    with pytest.raises(AlreadyExists) as caught:
        create_api(store, name="Debug", version="1.0", context="/shop/1.0.0/debug")
    assert caught.value.field == "context"
    assert "lies under '/shop/1.0.0'" in caught.value.message and outer.id in caught.value.message


def test_an_api_containing_another_apis_base_path_is_refused(store):
    inner = create_api(store, name="Inner", version="2", context="/shop/1.0.0/inner")
    with pytest.raises(AlreadyExists) as caught:
        create_api(store, name="Shop", context="/shop")
    assert "contains '/shop/1.0.0/inner/2'" in caught.value.message and inner.id in caught.value.message


def test_versions_of_the_same_api_may_nest(store):
    create_api(store, name="Shop", version="1.0.0", context="/shop")
    beta = create_api(store, name="Shop", version="beta", context="/shop/1.0.0/{version}")
    assert beta.base_path == "/shop/1.0.0/beta"


def test_an_update_that_moves_under_another_api_is_refused(store):
    from tests.admin_api.services.test_api_validation import _update

    create_api(store, name="A", context="/a")
    b = create_api(store, name="B", context="/b")
    with pytest.raises(AlreadyExists):
        _update(store, b.id, ["context"], context="/a/1.0.0/b")


def _plant_api(store, *, organization_id: str, base_path: str, name: str) -> models.Api:
    """An API row as data from before the rule could hold it (written past the services)."""
    api = create_api(store, name=name, context="/planted-" + name.lower())
    with store.db.engine.begin() as connection:
        connection.execute(update(models.Api).where(models.Api.id == api.id)
                           .values(organization_id=organization_id, base_path=base_path))
    return api


def test_the_error_names_an_api_of_another_organization_never(store, acme):
    planted = _plant_api(store, organization_id="default", base_path="/t/acme/bshop/1.0/debug", name="Planted")
    with pytest.raises(AlreadyExists) as caught:
        create_api(store, OTHER_ADMIN, name="BShop", version="1.0", context="/bshop")
    assert "another API" in caught.value.message
    assert planted.id not in caught.value.message and "Planted" not in caught.value.message


def test_migration_report_lists_existing_overlaps(store, acme):
    create_api(store, name="Shop", context="/shop")
    nested = _plant_api(store, organization_id="default", base_path="/shop/1.0.0/debug", name="Nested")
    foreign = _plant_api(store, organization_id="default", base_path="/t/acme/x/1", name="Foreign")
    with store.read() as session:
        lines = path_ownership.report_of(session)
    assert any(nested.id in line and "lies under" in line and "'/shop/1.0.0'" in line for line in lines), lines
    assert any(foreign.id in line and "outside its organization's paths" in line for line in lines), lines
    assert len(lines) == 2


def test_migration_0006_logs_the_report(tmp_path, caplog):
    from alembic import command
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0005_audit_log")
    with engine.begin() as connection:
        if connection.execute(text("SELECT 1 FROM organizations WHERE id = 'default'")).first() is None:
            connection.execute(text("INSERT INTO organizations (id, name, created_at) "
                                    "VALUES ('default', 'Default', '2026-01-01 00:00:00.000000')"))
        for api_id, name, path in [("a1", "Outer", "/o/1"), ("a2", "Other", "/o/1/x/2")]:
            connection.execute(text(
                "INSERT INTO apis (id, organization_id, name, version, context, base_path, production_endpoint, "
                "sandbox_endpoint, resources, security, subscription_less, lifecycle_state, description, "
                "created_at, updated_at) VALUES (:id, 'default', :name, '1', '/o', :path, 'http://x', '', '[]', "
                "'{}', 0, 'PUBLISHED', '', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"),
                {"id": api_id, "name": name, "path": path})
    with caplog.at_level(logging.WARNING, logger="admin_api.path_ownership"):
        command.upgrade(alembic_config(engine), "0006_path_ownership_report")
    reports = [r.getMessage() for r in caplog.records if r.name == "admin_api.path_ownership"]
    assert any("API a2" in m and "lies under" in m and "API a1" in m for m in reports), reports
    engine.dispose()


def _policy(api_id: str, organization_id: str, base_path: str):
    return compile_api(admin_pb2.Api(id=api_id, organization_id=organization_id, name=api_id, version="1",
                                     base_path=base_path, lifecycle_state=admin_pb2.Api.PUBLISHED))


def test_route_table_never_lets_an_organization_answer_under_another_ones_paths():
    owner = _policy("orgb-shop", "orgb", "/t/orgb/bshop/1.0")
    intruder = _policy("default-debug", "default", "/t/orgb/bshop/1.0/debug")
    table = RouteTable.build([owner, intruder])
    assert table.match(("t", "orgb", "bshop", "1.0", "debug", "echo")) is owner


@pytest.mark.parametrize(("organization_id", "base_path"), [
    pytest.param("default", "/t/orgb/x/1", id="default-inside-t"),
    pytest.param("orga", "/t/orgb/x/1", id="other-organizations-namespace"),
    pytest.param("orga", "/x/1", id="organization-outside-t"),
    pytest.param("orga", "/t/orga", id="organization-prefix-alone"),
])
def test_route_table_leaves_out_apis_outside_their_organizations_paths(organization_id, base_path):
    api = _policy("stray", organization_id, base_path)
    table = RouteTable.build([api])
    segments = tuple(base_path[1:].split("/")) + ("x",)
    assert table.match(segments) is None


def test_route_table_keeps_apis_inside_their_own_paths():
    default_api = _policy("d", "default", "/shop/1")
    tenant_api = _policy("o", "orga", "/t/orga/shop/1")
    table = RouteTable.build([default_api, tenant_api])
    assert table.match(("shop", "1", "menu")) is default_api
    assert table.match(("t", "orga", "shop", "1", "menu")) is tenant_api
