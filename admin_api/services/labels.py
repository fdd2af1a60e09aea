"""LabelService: key/value labels on admin objects, for tools that manage objects in
groups (`portcullis apply --prune` deletes only what carries its file's labels).

Labels are kept beside the objects (one row per labelled object), not in the policy
snapshot: authz_server never needs them. An object must exist in the caller's
organization to be labelled; labels of an object deleted since are not listed.
"""

from __future__ import annotations

import re

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.db.label_models import ObjectLabels
from admin_api.db.types import utcnow
from admin_api.errors import InvalidArgument, NotFound
from admin_api.services import paging
from admin_api.store.unit_of_work import Store, new_id
from portcullis.admin.v1 import labels_pb2 as pb

# The kinds that may be labelled, by the name the audit log uses for them.
LABELLED_KINDS: dict[str, type[models.Base]] = {
    "api": models.Api,
    "application": models.Application,
    "subscription": models.Subscription,
    "api_key": models.ApiKey,
    "application_key": models.ApplicationKey,
    "key_manager": models.KeyManager,
    "user": models.User,
    "scope": models.Scope,
}
MAX_LABELS = 32
_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?")
_VALUE = re.compile(r"([A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?)?")


def _model(kind: str) -> type[models.Base]:
    model = LABELLED_KINDS.get(kind)
    if model is None:
        raise InvalidArgument(f"kind {kind!r} cannot be labelled; one of: {', '.join(LABELLED_KINDS)}", field="kind")
    return model


def _exists(session: Session, kind: str, object_id: str, organization_id: str) -> bool:
    row = session.get(_model(kind), object_id)
    return row is not None and getattr(row, "organization_id") == organization_id


def _checked_labels(labels: list[pb.Label]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"at most {MAX_LABELS} labels per object", field="labels")
    checked: dict[str, str] = {}
    for index, label in enumerate(labels):
        if not _KEY.fullmatch(label.key):
            raise InvalidArgument(f"label key {label.key!r}: 1 to 63 letters, digits, '.', '_', '-' or '/', "
                                  "starting and ending with a letter or digit", field=f"labels[{index}].key")
        if not _VALUE.fullmatch(label.value):
            raise InvalidArgument(f"label value {label.value!r}: at most 63 letters, digits, '.', '_', '-' or "
                                  "'/', starting and ending with a letter or digit", field=f"labels[{index}].value")
        if label.key in checked:
            raise InvalidArgument(f"label key {label.key!r} is given twice", field=f"labels[{index}].key")
        checked[label.key] = label.value
    return checked


def _labels_pb(kind: str, object_id: str, labels: dict[str, str], updated_at: object | None) -> pb.ObjectLabels:
    message = pb.ObjectLabels(kind=kind, object_id=object_id,
                              labels=[pb.Label(key=k, value=v) for k, v in sorted(labels.items())])
    if updated_at is not None:
        stamp = Timestamp()
        stamp.FromDatetime(updated_at)  # type: ignore[arg-type]
        message.updated_at.CopyFrom(stamp)
    return message


def set_labels(store: Store, request: pb.SetLabelsRequest, caller: Caller) -> pb.ObjectLabels:
    _model(request.kind)
    if not request.object_id:
        raise InvalidArgument("object_id is required", field="object_id")
    labels = _checked_labels(list(request.labels))
    with store.write() as writer:
        session = writer.session
        if not _exists(session, request.kind, request.object_id, caller.organization_id):
            raise NotFound(f"{request.kind} {request.object_id!r} not found")
        row = session.scalars(select(ObjectLabels).where(
            ObjectLabels.organization_id == caller.organization_id, ObjectLabels.kind == request.kind,
            ObjectLabels.object_id == request.object_id)).one_or_none()
        now = utcnow()
        if not labels:
            if row is not None:
                session.delete(row)
            return _labels_pb(request.kind, request.object_id, {}, now)
        if row is None:
            row = ObjectLabels(id=new_id(), organization_id=caller.organization_id, kind=request.kind,
                               object_id=request.object_id, created_at=now)
            session.add(row)
        row.labels, row.updated_at = labels, now
        return _labels_pb(request.kind, request.object_id, labels, now)


def parse_selector(selector: str) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
            raise InvalidArgument(f"selector part {part!r}: expected key=value", field="selector")
        wanted[key] = value
    return wanted


def list_labels(store: Store, request: pb.ListLabelsRequest, caller: Caller) -> pb.ListLabelsResponse:
    if request.kind:
        _model(request.kind)
    wanted = parse_selector(request.selector)
    size = paging.page_size(request.page_size)
    statement = select(ObjectLabels).where(ObjectLabels.organization_id == caller.organization_id)
    if request.kind:
        statement = statement.where(ObjectLabels.kind == request.kind)
    filters = ["labels", caller.organization_id, request.kind, request.selector]
    with store.read() as session:
        rows, token = paging.paginate(session, statement, ObjectLabels, size=size, token=request.page_token,
                                      filters=filters)
        objects = [_labels_pb(row.kind, row.object_id, row.labels, row.updated_at) for row in rows
                   if all(row.labels.get(k) == v for k, v in wanted.items())
                   and _exists(session, row.kind, row.object_id, caller.organization_id)]
        return pb.ListLabelsResponse(objects=objects, next_page_token=token)
