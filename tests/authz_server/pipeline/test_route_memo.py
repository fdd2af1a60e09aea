"""The route stage remembers routes per index: a new index is asked afresh, so a route
found on one index never answers for another (an API retired or changed in between)."""

from __future__ import annotations

import pytest

from authz_server import denials
from authz_server.pipeline.route import resolve_route
from portcullis.admin.v1 import admin_pb2

from ..factories import PIZZA_BASE, index_of, make_api, make_request, pizza_world


def test_the_same_call_on_the_next_index_sees_its_change():
    found = index_of(*pizza_world())
    retired = index_of(*[record if not isinstance(record, admin_pb2.Api)
                         else make_api(state=admin_pb2.Api.RETIRED) for record in pizza_world()], revision=2)
    request = make_request(PIZZA_BASE + "/menu")
    assert resolve_route(request, found).resource.template == "/menu"
    assert resolve_route(request, found) is resolve_route(request, found)   # remembered
    with pytest.raises(denials.ApiNotDeployed):
        resolve_route(request, retired)
    assert resolve_route(request, found).resource.template == "/menu"


def test_a_changed_resource_list_is_matched_again():
    first = index_of(*pizza_world())
    changed = index_of(*[record if not isinstance(record, admin_pb2.Api)
                         else make_api(resources=(("POST", "/menu"),)) for record in pizza_world()], revision=2)
    request = make_request(PIZZA_BASE + "/menu")
    assert resolve_route(request, first).resource.method == "GET"
    with pytest.raises(denials.ResourceNotFound):
        resolve_route(request, changed)


def test_a_refused_call_is_refused_every_time():
    index = index_of(*pizza_world())
    for _ in range(3):
        with pytest.raises(denials.ResourceNotFound):
            resolve_route(make_request(PIZZA_BASE + "/nothing-here"), index)
