"""Method-override headers never reach the backend (issue 18, item 6): the decision is made
on the real method (a GET allowed as `GET /menu`), so `X-HTTP-Method-Override: DELETE`
(or `X-HTTP-Method`, `X-Method-Override`), honoured by many frameworks, would run a method
nobody allowed. authz_server removes them on every allowed request, in any spelling."""

from __future__ import annotations

import pytest

from authz_server.envoy_adapter import to_check_response, to_request_context
from authz_server.pipeline import Allow, decide
from tests.authz_server.checks import check_request
from tests.authz_server.factories import NOW, PIZZA_BASE, PROD_KEY, index_of, pizza_world


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "x-http-method", "X-Method-Override"])
def test_a_method_override_header_is_removed_before_the_backend(header: str):
    index = index_of(*pizza_world())
    context = to_request_context(check_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY, header: "DELETE"}))
    decision = decide(context, index, NOW)
    assert isinstance(decision, Allow), decision
    assert header.lower() in to_check_response(decision, context).ok_response.headers_to_remove


def test_no_override_header_is_named_when_none_is_sent():
    index = index_of(*pizza_world())
    context = to_request_context(check_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY}))
    removed = to_check_response(decide(context, index, NOW), context).ok_response.headers_to_remove
    assert not {"x-http-method-override", "x-http-method", "x-method-override"} & set(removed)
