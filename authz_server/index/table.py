"""The contract of one entity kind's part of the policy index.

A `Table` is frozen: its primary map (`by_id`) and whatever secondary lookups requests
need, all persistent maps. `edit()` gives a `TableEdit` that files sync records
(`upsert`) and drops them (`delete`) on mutable copies, and `finish()` makes the next
frozen table. `PolicyIndex` holds one table per entity kind and edits them alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Hashable, Iterator, MutableMapping

from immutables import Map, MapMutation


class Table(ABC):
    """One entity kind, frozen. Reads like a read-only mapping of its primary map."""

    __slots__ = ()

    # The PolicyEntity `kind` field that carries this table's records, and the EntityRef
    # kind that deletes one.
    entity: ClassVar[str]
    ref_kind: ClassVar[int]
    by_id: Map

    @abstractmethod
    def edit(self) -> TableEdit:
        """Mutable copies of this table's maps; `finish()` them into the next table."""

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, key: object) -> bool:
        return key in self.by_id

    def __getitem__(self, key: Hashable) -> Any:
        return self.by_id[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.by_id)

    def get(self, key: Hashable, default: Any = None) -> Any:
        return self.by_id.get(key, default)

    def values(self) -> Iterator[Any]:
        return iter(self.by_id.values())


class TableEdit(ABC):
    """Changes to one table, made in place and finished into a new frozen table."""

    @abstractmethod
    def upsert(self, record: Any) -> None:
        """File one sync record (replacing the entity of the same id). Raises PolicyError,
        before changing anything, when the record cannot be compiled."""

    @abstractmethod
    def delete(self, entity_id: str) -> None:
        """Drop the entity of this id and its lookup entries; nothing when it is absent."""

    @abstractmethod
    def finish(self) -> Table:
        """The next frozen table."""


def unfile(lookup: MutableMapping[Any, Any] | MapMutation[Any, Any], key: Hashable, entity_id: Hashable,
           id_of: Callable[[Any], Hashable] = lambda entity: entity.id) -> None:
    """Remove a secondary lookup entry, but only while it still names the entity being
    removed: another entity may have been filed under the same key since."""
    current = lookup.get(key)
    if current is not None and id_of(current) == entity_id:
        del lookup[key]
