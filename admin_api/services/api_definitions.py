"""An API's OpenAPI document (ApiDefinition): set, read, delete.

Readers are the API's readers, with GetApi's rules (a subscriber reads the documents of
PUBLISHED and DEPRECATED APIs only; any other is NOT_FOUND, like a missing API); its
authors (admins, publishers, creators) set and delete it. Kept beside the API, not in the
change log: authz_server never needs it (what it enforces are the API's resources), so a
new document wakes no Watch stream. Set and delete are audited by the Dispatcher like
every change.
"""

from __future__ import annotations

import hashlib

from google.protobuf.empty_pb2 import Empty
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.db.definition_models import ApiDefinition
from admin_api.db.types import utcnow
from admin_api.errors import NotFound
from admin_api.services import isolation, openapi_documents
from admin_api.services.apis import visible_api
from admin_api.store.unit_of_work import Store
from admin_api.views.timestamps import timestamp
from portcullis.admin.v1 import admin_pb2


def definition_pb(row: ApiDefinition) -> admin_pb2.ApiDefinition:
    return admin_pb2.ApiDefinition(
        api_id=row.api_id, organization_id=row.organization_id, document=row.document, format=row.format,
        spec_version=row.spec_version, title=row.title, sha256=row.sha256, size_bytes=row.size_bytes,
        updated_at=timestamp(row.updated_at), updated_by=row.updated_by)


def set_api_definition(store: Store, request: admin_pb2.SetApiDefinitionRequest,
                       caller: Caller) -> admin_pb2.ApiDefinition:
    parsed = openapi_documents.parse(request.document)   # before any transaction: the costly part
    encoded = request.document.encode("utf-8")
    with store.write() as writer:
        api = isolation.get(writer.session, models.Api, request.id, caller, what="API")
        row = writer.session.get(ApiDefinition, api.id)
        if row is None:
            row = ApiDefinition(api_id=api.id, organization_id=api.organization_id)
            writer.session.add(row)
        row.document, row.format, row.spec_version = request.document, parsed.format, parsed.spec_version
        row.title = parsed.title[:300]
        row.sha256, row.size_bytes = hashlib.sha256(encoded).hexdigest(), len(encoded)
        row.updated_at, row.updated_by = utcnow(), caller.subject[:200]
        writer.session.flush()
        return definition_pb(row)


def visible_definition(session: Session, api_id: str, caller: Caller) -> ApiDefinition:
    """The document of an API the caller may see; NOT_FOUND when it may not, or there is none."""
    api = visible_api(session, api_id, caller)
    row = session.get(ApiDefinition, api.id)
    if row is None:
        raise NotFound(f"API {api_id!r} has no OpenAPI document")
    return row


def get_api_definition(store: Store, request: admin_pb2.GetApiDefinitionRequest,
                       caller: Caller) -> admin_pb2.ApiDefinition:
    with store.read() as session:
        return definition_pb(visible_definition(session, request.id, caller))


def delete_api_definition(store: Store, request: admin_pb2.DeleteApiDefinitionRequest, caller: Caller) -> Empty:
    with store.write() as writer:
        api = isolation.get(writer.session, models.Api, request.id, caller, what="API")
        row = writer.session.get(ApiDefinition, api.id)
        if row is None:
            raise NotFound(f"API {request.id!r} has no OpenAPI document")
        writer.session.delete(row)
    return Empty()
