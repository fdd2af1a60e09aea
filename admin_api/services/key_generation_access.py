"""Who may generate keys at which key manager: the key manager's ALLOW or DENY list of
roles, by the roles of the application's owner (the rule GenerateApplicationKey and
MapApplicationKey enforce), and the portal's list of the key managers a user may use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.services import users
from admin_api.store.unit_of_work import Store


@dataclass(frozen=True)
class KeyManagerChoice:
    """A key manager of the caller's organization, for the portal's key generation form."""
    id: str
    name: str
    label: str          # the display name, else the name
    type: str           # KeyManager.Type name
    refusal: str        # why the caller may not generate keys there; "" when they may


def key_managers_for(store: Store, caller: Caller) -> list[KeyManagerChoice]:
    """The enabled key managers of the caller's organization, the resident first, each
    with the refusal its role restriction gives the caller's roles (the rule of
    GenerateApplicationKey, for the caller's own applications)."""
    with store.read() as session:
        roles = users.roles_in(session, caller.organization_id, caller.subject)
        rows = session.scalars(select(models.KeyManager).where(
            models.KeyManager.organization_id == caller.organization_id, models.KeyManager.enabled.is_(True)))
        choices = [KeyManagerChoice(id=row.id, name=row.name, label=row.display_name or row.name, type=row.type,
                                    refusal=key_generation_refusal(row, roles, caller.subject)) for row in rows]
    return sorted(choices, key=lambda c: (c.type != "RESIDENT", c.label.lower()))


def key_generation_refusal(km: models.KeyManager, roles: Iterable[str], owner: str) -> str:
    """Why an owner with these roles may not generate keys at this key manager; "" when
    they may (the key manager's ALLOW or DENY list of roles)."""
    held = set(roles)
    allowed, denied = km.key_generation_allowed_roles, km.key_generation_denied_roles
    if allowed and not held.intersection(allowed):
        return (f"key manager {km.name!r} allows key generation only to owners with a role of "
                f"{', '.join(allowed)}; owner {owner!r} has none")
    refused = sorted(held.intersection(denied))
    if refused:
        return f"key manager {km.name!r} denies key generation to role(s) {', '.join(refused)} of owner {owner!r}"
    return ""
