import pytest

from authz_server.index.errors import PolicyError
from authz_server.index.resources import best_match, compile_resource, split_path


@pytest.mark.parametrize(
    "method,template,request_method,path,matches",
    [
        ("GET", "/menu", "GET", "/menu", True),
        ("GET", "/menu", "GET", "/menu/", True),
        ("GET", "/menu", "POST", "/menu", False),
        ("GET", "/menu", "GET", "/menus", False),
        ("GET", "/menu", "GET", "/menu/extra", False),
        ("GET", "/menu", "GET", "/Menu", False),
        ("*", "/menu", "DELETE", "/menu", True),
        ("get", "/menu", "GET", "/menu", True),
        ("GET", "/orders/{id}", "GET", "/orders/42", True),
        ("GET", "/orders/{id}", "GET", "/orders", False),
        ("GET", "/orders/{id}", "GET", "/orders/42/items", False),
        ("GET", "/orders/{id}/items", "GET", "/orders/42/items", True),
        ("GET", "/orders/*", "GET", "/orders", True),
        ("GET", "/orders/*", "GET", "/orders/1/2/3", True),
        ("GET", "/orders/*", "GET", "/ordersx", False),
        ("GET", "/*", "GET", "/", True),
        ("GET", "/*", "GET", "/anything/at/all", True),
    ],
    ids=lambda v: str(v),
)
def test_template_matching(method, template, request_method, path, matches):
    resource = compile_resource(method, template)
    assert (resource.specificity(request_method, split_path(path)) is not None) is matches


@pytest.mark.parametrize(
    "templates,method,path,winner",
    [
        ((("GET", "/orders/{id}"), ("GET", "/orders/latest")), "GET", "/orders/latest", "/orders/latest"),
        ((("GET", "/orders/*"), ("GET", "/orders/{id}")), "GET", "/orders/7", "/orders/{id}"),
        ((("GET", "/*"), ("GET", "/orders/*")), "GET", "/orders/7", "/orders/*"),
        ((("GET", "/orders/*"), ("GET", "/orders")), "GET", "/orders", "/orders"),
        ((("*", "/menu"), ("GET", "/menu")), "GET", "/menu", "GET /menu"),
        ((("GET", "/{a}/x"), ("GET", "/y/{b}")), "GET", "/y/x", "/y/{b}"),
    ],
    ids=["literal-beats-param", "param-beats-wildcard", "longer-literal-beats-root-wildcard",
         "exact-beats-empty-wildcard", "named-method-beats-any", "leftmost-literal-wins"],
)
def test_most_specific_resource_wins(templates, method, path, winner):
    resources = [compile_resource(m, t) for m, t in templates]
    best = best_match(resources, method, split_path(path))
    assert best is not None
    label = winner if not winner.startswith("GET ") else winner[4:]
    assert best.template == label
    if winner.startswith("GET "):
        assert best.method == "GET"


@pytest.mark.parametrize(
    "method,template",
    [("GET", "menu"), ("GET", "/a/*/b"), ("GET", "/a/{b"), ("GET", "/a/x{b}"), ("BREW", "/coffee"), ("GET", "/a//b")],
    ids=["no-leading-slash", "inner-wildcard", "unclosed-param", "partial-param", "unknown-method", "empty-segment"],
)
def test_invalid_templates_are_refused(method, template):
    with pytest.raises(PolicyError):
        compile_resource(method, template)


def test_param_does_not_match_empty_segment():
    resource = compile_resource("GET", "/orders/{id}/items")
    assert resource.specificity("GET", ("orders", "", "items")) is None
