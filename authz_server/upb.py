"""authz_server runs only on protobuf's upb backend."""

from __future__ import annotations

from google.protobuf.internal import api_implementation


class ProtobufBackendError(RuntimeError):
    pass


def require_upb() -> None:
    """The pure-Python protobuf backend is ~75x slower per Check; refuse to run on it."""
    backend = api_implementation.Type()
    if backend != "upb":
        raise ProtobufBackendError(
            f"authz_server needs the upb protobuf backend, but this interpreter uses {backend!r}. "
            "Unset PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION and install the protobuf wheel for this platform."
        )
