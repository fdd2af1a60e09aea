"""List pagination: page_size bounds and opaque page tokens.

Lists are ordered by (created_at, id). A page token encodes the last row's position and a
fingerprint of the list's filters, so a token cannot be replayed against another query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from admin_api.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

Row = TypeVar("Row")


def page_size(value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size {value} must be between 0 (default {DEFAULT_PAGE_SIZE}) "
                              f"and {MAX_PAGE_SIZE}", field="page_size")
    return value or DEFAULT_PAGE_SIZE


def _fingerprint(filters: Sequence[object]) -> str:
    return hashlib.sha256(json.dumps([str(f) for f in filters]).encode()).hexdigest()[:16]


def encode_token(created_at: datetime, row_id: str, filters: Sequence[object]) -> str:
    raw = json.dumps({"c": created_at.isoformat(), "i": row_id, "f": _fingerprint(filters)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, filters: Sequence[object]) -> tuple[datetime, str]:
    bad = InvalidArgument("page_token is not a token returned by this list", field="page_token")
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        created_at, row_id, fingerprint = datetime.fromisoformat(raw["c"]), raw["i"], raw["f"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(row_id, str) or fingerprint != _fingerprint(filters) or created_at.tzinfo is None:
        raise bad
    return created_at, row_id


def paginate(session: Session, statement: Select[Any], model: Any, *, size: int, token: str,
             filters: Sequence[object]) -> tuple[list[Any], str]:
    """One page of `statement` (which selects `model`) and the next page's token ('' at the end)."""
    if token:
        created_at, row_id = decode_token(token, filters)
        statement = statement.where(or_(model.created_at > created_at,
                                        and_(model.created_at == created_at, model.id > row_id)))
    rows = list(session.scalars(statement.order_by(model.created_at, model.id).limit(size + 1)))
    if len(rows) <= size:
        return rows, ""
    last = rows[size - 1]
    return rows[:size], encode_token(last.created_at, last.id, filters)
