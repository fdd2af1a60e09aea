"""RFC 9457 problem documents: the one shape of every REST error answer.

`{"type", "title", "status", "detail", "code"}` plus `"field"` when one request field is
at fault. `code` is the stable reason (the AdminError's `reason`, or one of the REST
layer's own below); `type` is `https://portcullis.dev/problems/<code>`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Mapping

from starlette.responses import JSONResponse

from admin_api.errors import AdminError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://portcullis.dev/problems/"
WWW_AUTHENTICATE = 'Bearer realm="portcullis-admin"'

# Reasons that only the REST layer produces (the service layer's are in admin_api.errors).
INVALID_ARGUMENT = "invalid_argument"
MALFORMED_JSON = "malformed_json"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNAUTHENTICATED = "unauthenticated"
ROUTE_NOT_FOUND = "route_not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
INTERNAL_ERROR = "internal_error"


class Problem(Exception):
    """An error answer decided by the REST layer itself (parsing, routing, credential)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})


def invalid(detail: str, field: str | None = None) -> Problem:
    return Problem(400, INVALID_ARGUMENT, detail, field=field)


def from_admin_error(error: AdminError) -> Problem:
    return Problem(error.http_status, error.reason, error.message, field=error.field)


def internal_error() -> Problem:
    # Never the exception text: it may carry internals (SQL, paths, values).
    return Problem(500, INTERNAL_ERROR, "An unexpected error occurred; it has been logged.")


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_BASE + problem.code,
        "title": _title(problem.status),
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
    }
    if problem.field:
        body["field"] = problem.field
    headers = dict(problem.headers)
    if problem.status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    headers["Cache-Control"] = "no-store"
    return JSONResponse(
        body, status_code=problem.status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
