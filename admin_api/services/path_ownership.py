"""Who owns which request paths: an API owns its base path and everything under it.

Envoy and authz_server route a request to the API with the longest base path that is a
segment prefix of the request path, so an API whose base path lies under another's takes
over that part of the other's paths, and one that is a prefix of another's would take
the other's paths the day the other is deleted. The rule:

- two APIs never share a base path;
- a base path that is a segment prefix of another, or lies under another, is refused
  across organizations always, and within one organization unless both are versions of
  the same API (same name): `/shop/1.0` and `/shop/1.0/beta` may both be "Shop".

The error names the other API only when the caller may see it (same organization, and a
state the caller's roles may read); otherwise it says "another API". `overlaps()` finds
the pairs that break the rule in existing data (the migration report).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from admin_api.db import models
from admin_api.errors import AlreadyExists


def _prefixes(base_path: str) -> list[str]:
    """`/a/b/c` → [`/a`, `/a/b`]: the paths that would contain it, segment by segment."""
    segments = base_path[1:].split("/")
    return ["/" + "/".join(segments[:n]) for n in range(1, len(segments))]


DEFAULT_ORGANIZATION = "default"


def may_share_paths(a: "ApiRow", b: "ApiRow") -> bool:
    """True when `a` may nest inside `b` (or `b` inside `a`): versions of one API."""
    return a.organization_id == b.organization_id and a.name == b.name


def conflicting_api(session: Session, row: models.Api) -> models.Api | None:
    """The first API (other than `row`) whose base path collides with `row`'s by the rule."""
    candidates = session.scalars(
        select(models.Api)
        .where(models.Api.id != row.id)
        .where(or_(models.Api.base_path == row.base_path,
                   models.Api.base_path.in_(_prefixes(row.base_path)),
                   models.Api.base_path.startswith(row.base_path + "/", autoescape=True)))
        .order_by(models.Api.base_path, models.Api.id))
    for other in candidates:
        if other.base_path == row.base_path or not may_share_paths(row, other):
            return other
    return None


def check(session: Session, row: models.Api, *, may_see: Callable[[models.Api], bool]) -> None:
    other = conflicting_api(session, row)
    if other is None:
        return
    if other.base_path == row.base_path:
        relation = "is already the base path of"
    elif other.base_path.startswith(row.base_path + "/"):
        relation = f"contains {other.base_path!r}, the base path of"
    else:
        relation = f"lies under {other.base_path!r}, the base path of"
    if may_see(other):
        whom = f"API {other.name!r} version {other.version!r} (id {other.id!r})"
    else:
        whom = "another API"
    raise AlreadyExists(
        f"base path {row.base_path!r} (from context {row.context!r} and version {row.version!r}) {relation} "
        f"{whom}; base paths may nest only between versions of the same API", field="context")


class ApiRow(Protocol):
    """What the report reads of an API: an ORM row, or a plain row in a migration."""

    id: str
    organization_id: str
    name: str
    version: str
    lifecycle_state: str
    base_path: str


@dataclass(frozen=True)
class Overlap:
    """Two existing APIs that break the rule: `inner` lies under (or equals) `outer`."""

    outer: ApiRow
    inner: ApiRow

    def describe(self) -> str:
        how = "shares its base path with" if self.outer.base_path == self.inner.base_path else "lies under"
        return f"{_label(self.inner)} {how} {_label(self.outer)}"


def _label(api: ApiRow) -> str:
    return (f"API {api.id} ({api.name!r} {api.version!r}, organization {api.organization_id!r}, "
            f"{api.lifecycle_state}, base path {api.base_path!r})")


def outside_namespace(api: ApiRow) -> bool:
    """An API served outside its organization's `/t/<id>` namespace (or, in the default
    organization, inside `/t/`): possible only in data written before the rule."""
    if api.organization_id == DEFAULT_ORGANIZATION:
        return api.base_path == "/t" or api.base_path.startswith("/t/")
    return not api.base_path.startswith(f"/t/{api.organization_id}/")


def overlaps(apis: Iterable[ApiRow]) -> list[Overlap]:
    """Every pair of APIs whose base paths collide by the rule, outer first."""
    by_path: dict[str, list[ApiRow]] = {}
    for api in apis:
        by_path.setdefault(api.base_path, []).append(api)
    found: list[Overlap] = []
    for path, owners in sorted(by_path.items()):
        for index, inner in enumerate(owners):
            found.extend(Overlap(outer, inner) for outer in owners[:index])
            for prefix in _prefixes(path):
                found.extend(Overlap(outer, inner) for outer in by_path.get(prefix, ())
                             if not may_share_paths(outer, inner))
    return found


def report(apis: Iterable[ApiRow]) -> list[str]:
    """One line per existing API, or pair of APIs, that breaks a path rule. Nothing is
    changed: which API keeps a path is the owners' decision. (authz_server already
    leaves an API outside its organization's paths out of routing.)"""
    rows = sorted(apis, key=lambda api: (api.base_path, api.id))
    lines = [f"{_label(api)} is served outside its organization's paths" for api in rows if outside_namespace(api)]
    lines.extend(overlap.describe() for overlap in overlaps(rows))
    return lines


def report_of(session: Session) -> list[str]:
    return report(session.scalars(select(models.Api)))
