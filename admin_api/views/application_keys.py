"""An application key's admin view, its OAuth client settings column, and a consumer
secret's view (masked; the secret itself is shown once, by the call that makes it)."""

from __future__ import annotations

from google.protobuf import json_format

from admin_api.db import models
from admin_api.views.timestamps import timestamp
from portcullis.admin.v1 import admin_pb2, application_keys_pb2


def oauth_client_settings_pb(stored: dict) -> application_keys_pb2.OAuthClientSettings:
    return json_format.ParseDict(stored, application_keys_pb2.OAuthClientSettings())


def oauth_client_settings_json(message: application_keys_pb2.OAuthClientSettings) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def application_key_pb(row: models.ApplicationKey) -> application_keys_pb2.ApplicationKey:
    return application_keys_pb2.ApplicationKey(
        id=row.id,
        organization_id=row.organization_id,
        application_id=row.application_id,
        environment=admin_pb2.Environment.Value(row.environment),
        key_manager_id=row.key_manager_id,
        consumer_key=row.consumer_key,
        settings=oauth_client_settings_pb(row.settings),
        origin=application_keys_pb2.ApplicationKey.Origin.Value(row.origin),
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
    )


def consumer_secret_pb(row: models.ConsumerSecret) -> application_keys_pb2.ConsumerSecret:
    message = application_keys_pb2.ConsumerSecret(
        id=row.id,
        application_key_id=row.application_key_id,
        description=row.description,
        masked_value=row.masked_value,
        created_at=timestamp(row.created_at),
    )
    if row.expires_at is not None:
        message.expires_at.CopyFrom(timestamp(row.expires_at))
    return message
