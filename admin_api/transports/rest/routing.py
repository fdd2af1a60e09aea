"""Request line → route: 404 when no template fits the path, 405 (with Allow) when
templates fit but none for this method. Matching runs on the raw path so that an
encoded `/` (`%2F`) stays inside one segment and is decoded only as a field value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from admin_api.transports.rest.bindings import PathTemplate
from admin_api.transports.rest.problems import METHOD_NOT_ALLOWED, ROUTE_NOT_FOUND, Problem

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    method: str
    path: PathTemplate
    target: T


class Router(Generic[T]):
    def __init__(self) -> None:
        self._entries: list[_Entry[T]] = []

    def add(self, method: str, path: PathTemplate, target: T) -> None:
        self._entries.append(_Entry(method, path, target))

    def resolve(self, method: str, raw_path: str) -> tuple[T, dict[str, str]]:
        if not raw_path.startswith("/"):
            raise _not_found()
        segments = raw_path[1:].split("/")
        fits: list[tuple[_Entry[T], dict[str, str]]] = []
        for entry in self._entries:
            values = entry.path.match(segments)
            if values is not None:
                fits.append((entry, values))
        if not fits:
            raise _not_found()
        same_method = [(e, v) for e, v in fits if e.method == method]
        if not same_method:
            allow = ", ".join(sorted({e.method for e, _ in fits}))
            raise Problem(
                405,
                METHOD_NOT_ALLOWED,
                f"{method} is not allowed here; allowed: {allow}",
                headers={"Allow": allow},
            )
        # The most specific template wins (`/v1/apis/search` over `/v1/apis/{id}`).
        entry, values = max(same_method, key=lambda fit: fit[0].path.literal_count)
        return entry.target, values


def _not_found() -> Problem:
    return Problem(404, ROUTE_NOT_FOUND, "No operation of the admin API is served at this path.")
