"""Throttling policies, by id and by (organization, kind, name): subscriptions,
applications, APIs and resources name their policy, and the throttle stage looks it up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from immutables import Map
from portcullis.admin.v1 import throttling_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.index.errors import PolicyError
from authz_server.index.table import Table, TableEdit, unfile
from authz_server.throttle.policy import PolicyRecordError, ThrottlingPolicy, compile_throttling_policy, policy_key


@dataclass(frozen=True, slots=True)
class ThrottlingPolicyTable(Table):
    entity: ClassVar[str] = "throttling_policy"
    ref_kind: ClassVar[int] = sync_pb2.THROTTLING_POLICY
    by_id: Map = Map()     # id → ThrottlingPolicy
    by_name: Map = Map()   # (organization_id, kind, name) → ThrottlingPolicy

    def named(self, organization_id: str, kind: str, name: str) -> ThrottlingPolicy | None:
        return self.by_name.get((organization_id, kind, name))

    def edit(self) -> "_ThrottlingPolicyEdit":
        return _ThrottlingPolicyEdit(self)


class _ThrottlingPolicyEdit(TableEdit):
    def __init__(self, base: ThrottlingPolicyTable) -> None:
        self.by_id = base.by_id.mutate()
        self.by_name = base.by_name.mutate()

    def upsert(self, record: throttling_pb2.ThrottlingPolicy) -> None:
        try:
            policy = compile_throttling_policy(record)
        except PolicyRecordError as exc:
            raise PolicyError(str(exc)) from None
        self.delete(policy.id)
        self.by_id[policy.id] = policy
        self.by_name[policy_key(policy.organization_id, policy.kind, policy.name)] = policy

    def delete(self, entity_id: str) -> None:
        old: ThrottlingPolicy | None = self.by_id.pop(entity_id, None)
        if old is not None:
            unfile(self.by_name, old.key, old.id)

    def finish(self) -> ThrottlingPolicyTable:
        return ThrottlingPolicyTable(by_id=self.by_id.finish(), by_name=self.by_name.finish())
