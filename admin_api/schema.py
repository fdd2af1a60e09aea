"""The proto files that make up the admin API: the one list every transport reads.

The dispatcher's registry, the gRPC server, the REST routes and the OpenAPI document
are all built from the services of these modules, so an RPC added to one of them (and
given a handler in `admin_api.dispatch.HANDLERS`) appears on every transport at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from google.protobuf.descriptor import ServiceDescriptor

from portcullis.admin.v1 import admin_pb2, signing_keys_pb2, key_managers_pb2, application_keys_pb2, users_pb2
from portcullis.admin.v1 import backend_signing_keys_pb2
from portcullis.admin.v1 import audit_pb2, decisions_pb2, labels_pb2
from portcullis.admin.v1 import throttling_pb2
from portcullis.admin.v1 import gateways_pb2

ADMIN_PROTO_MODULES: tuple[ModuleType, ...] = (
    admin_pb2, signing_keys_pb2, key_managers_pb2, application_keys_pb2, users_pb2, backend_signing_keys_pb2,
    audit_pb2, gateways_pb2, labels_pb2, decisions_pb2, throttling_pb2,
)


def admin_services() -> Iterator[ServiceDescriptor]:
    for module in ADMIN_PROTO_MODULES:
        yield from module.DESCRIPTOR.services_by_name.values()
