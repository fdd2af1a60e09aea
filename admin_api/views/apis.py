"""An API's admin view (also its sync record), and its JSON columns (security schemes,
resources, backend JWT configuration) to and from their messages."""

from __future__ import annotations

from google.protobuf import json_format

from admin_api.db import models
from admin_api.views.timestamps import timestamp
from portcullis.admin.v1 import admin_pb2


def security_pb(stored: dict) -> admin_pb2.SecuritySchemes:
    return json_format.ParseDict(stored, admin_pb2.SecuritySchemes())


def security_json(message: admin_pb2.SecuritySchemes) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def resource_pb(stored: dict) -> admin_pb2.Resource:
    return admin_pb2.Resource(method=stored["method"], path=stored["path"], open=stored["open"],
                              scopes=stored.get("scopes", []), throttling_policy=stored.get("throttling_policy", ""))


def resource_json(resource: admin_pb2.Resource) -> dict:
    stored = {"method": resource.method, "path": resource.path, "open": resource.open,
              "scopes": list(resource.scopes)}
    if resource.throttling_policy:
        stored["throttling_policy"] = resource.throttling_policy
    return stored


def backend_jwt_pb(stored: dict) -> admin_pb2.BackendJwtConfig:
    return json_format.ParseDict(stored, admin_pb2.BackendJwtConfig())


def backend_jwt_json(message: admin_pb2.BackendJwtConfig) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def api_pb(row: models.Api) -> admin_pb2.Api:
    message = admin_pb2.Api(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        version=row.version,
        context=row.context,
        base_path=row.base_path,
        production_endpoint=row.production_endpoint,
        sandbox_endpoint=row.sandbox_endpoint,
        resources=[resource_pb(r) for r in row.resources],
        security=security_pb(row.security),
        subscription_less=row.subscription_less,
        lifecycle_state=admin_pb2.Api.LifecycleState.Value(row.lifecycle_state),
        description=row.description,
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        pass_authorization_header=bool(row.pass_authorization_header),
        enforcement=admin_pb2.Enforcement.Value(row.enforcement or "ENFORCE"),
        throttling_policy=row.throttling_policy or "",
    )
    if row.backend_jwt is not None:
        message.backend_jwt.CopyFrom(backend_jwt_pb(row.backend_jwt))
    if row.upstream is not None:
        message.upstream.CopyFrom(json_format.ParseDict(row.upstream, admin_pb2.UpstreamConfig()))
    return message


def upstream_json(message: admin_pb2.UpstreamConfig) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
