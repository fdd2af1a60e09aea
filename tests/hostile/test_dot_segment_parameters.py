"""`..;` reaching a secured resource through an open one (issue 18, item 2).

With `GET /open/*` open and `/debug/echo/*` secured, `/open/%2e%2e;/debug/echo/x` was
allowed as `GET /open/*`; Envoy decodes `%2e` but keeps `..;`, and Tomcat, Spring, Jetty
or a second proxy drop the `;...` part and resolve the `..`, reaching the secured
resource. authz_server's path parser refuses any segment whose part before `;` is `.` or
`..`, in every encoding (the Envoy side: tests/hostile/test_paths_envoy.py)."""

from __future__ import annotations

import pytest

from authz_server.denials import BadRequest
from authz_server.pipeline.paths import parse_path

HOSTILE = [
    "/open/..;/debug/echo/x",
    "/open/%2e%2e;/debug/echo/x",
    "/open/%2E%2E;/debug/echo/x",
    "/open/.%2e;/debug/echo/x",
    "/open/%2e.;/debug/echo/x",
    "/open/%2e;/debug/echo/x",
    "/open/.;/debug/echo/x",
    "/open/..;jsessionid=abc/debug/echo/x",
    "/open/..%3b/debug/echo/x",
    "/open/%2e%2e%3B/debug/echo/x",
    "/open/x/..;",
    "/open/..;/",
]


@pytest.mark.parametrize("raw", HOSTILE, ids=HOSTILE)
def test_dot_segments_with_parameters_are_bad_requests(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_path(raw)


@pytest.mark.parametrize(("raw", "segments"), [
    ("/open/a;b/x", ("open", "a;b", "x")),
    ("/open/...;/x", ("open", "...;", "x")),
    ("/open/..a;/x", ("open", "..a;", "x")),
    ("/open/;../x", ("open", ";..", "x")),
], ids=["parameter", "three-dots", "dots-and-letter", "parameter-first"])
def test_other_segments_with_parameters_still_parse(raw: str, segments: tuple[str, ...]) -> None:
    assert parse_path(raw) == segments
