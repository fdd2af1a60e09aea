"""Typed admin errors: each carries its gRPC status code, HTTP status and a stable reason.

The service layer raises these; the gRPC layer turns them into a status with the
message, the REST layer into an RFC 9457 problem document. Anything else that escapes
is a bug and is reported as INTERNAL / 500 without details.
"""

from __future__ import annotations

import grpc


# Messages quote the offending value; a huge value must not come back whole (a 3 MB name
# made a gRPC status larger than any client accepts, and the caller got no answer at all).
MAX_MESSAGE_LENGTH = 1000


class AdminError(Exception):
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int = 500
    reason: str = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[: MAX_MESSAGE_LENGTH - 15] + " ... (shortened)"
        super().__init__(message)
        self.message = message
        self.field = field  # the request field at fault, when there is one


class InvalidArgument(AdminError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400
    reason = "invalid_argument"


class PayloadTooLarge(AdminError):
    """A value over a size limit the service keeps (an API's OpenAPI document): REST 413."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 413
    reason = "payload_too_large"


class Unauthenticated(AdminError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401
    reason = "unauthenticated"


class PermissionDenied(AdminError):
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403
    reason = "permission_denied"


class NotFound(AdminError):
    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404
    reason = "not_found"


class AlreadyExists(AdminError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
    http_status = 409
    reason = "already_exists"


class FailedPrecondition(AdminError):
    """The request is well-formed but the current state forbids it (e.g. an illegal
    lifecycle transition, or generating a key for a RETIRED API)."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409
    reason = "failed_precondition"


class Unavailable(AdminError):
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    reason = "unavailable"
