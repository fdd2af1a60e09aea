"""The policy index: admin_api's state compiled ahead into lookups that requests only read.

`PolicyIndex` is immutable; `PolicyStore` holds the current one and swaps in a new one
for every snapshot or change. Each entity kind has its own small builder module.
"""

from authz_server.index.errors import PolicyError
from authz_server.index.policy_index import PolicyIndex
from authz_server.index.store import PolicyStore, RevisionGap

__all__ = ["PolicyError", "PolicyIndex", "PolicyStore", "RevisionGap"]
