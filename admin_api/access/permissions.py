"""Who may call which admin RPC: the one permission table, checked by the Dispatcher.

Each row names the roles that may call the RPC, which of them act on their own
resources only (owner == the caller's subject; the services enforce that, answering
NOT_FOUND for someone else's resource and listing only the caller's own), whether the
RPC changes state (every change is recorded in the audit log), and what it acts on (the
audit record's target). An RPC served without a row here is a start-up error.

| role       | may                                                                        |
|------------|----------------------------------------------------------------------------|
| admin      | everything in its organization (revoke any API key, users, key managers...) |
| publisher  | APIs (and their OpenAPI documents): create, read, update, delete, lifecycle |
| creator    | APIs (and their OpenAPI documents): create, read, update, delete; no lifecycle |
| (all four) | read throttling policies (only admins change them)                        |
| subscriber | read PUBLISHED and DEPRECATED APIs; applications, subscriptions,          |
|            | application keys, API keys: own                                            |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from admin_api.access.caller import Caller, Role
from admin_api.errors import PermissionDenied


@dataclass(frozen=True)
class Permission:
    roles: frozenset[Role]                   # may call
    own_only: frozenset[Role] = frozenset()  # of those: on their own resources only
    changes: bool = True                     # writes state: audited
    target: str = ""                         # audit target kind, e.g. "api"
    # The request field that names the target; "" for the entity the call creates.
    target_field: str = "id"

    def admit(self, method: str, caller: Caller) -> Caller:
        """The caller as it may act in this call; PermissionDenied when none of its roles may."""
        held = caller.roles & self.roles
        if not held:
            mine = ", ".join(sorted(r.value for r in caller.roles)) or "none"
            needed = ", ".join(sorted(r.value for r in self.roles))
            raise PermissionDenied(f"{method} needs one of the roles {needed}; this caller has {mine}")
        own_only = held <= self.own_only
        return caller if caller.own_resources_only == own_only else replace(caller, own_resources_only=own_only)


ADMIN = frozenset({Role.ADMIN})
API_AUTHORS = frozenset({Role.ADMIN, Role.PUBLISHER, Role.CREATOR})
LIFECYCLE = frozenset({Role.ADMIN, Role.PUBLISHER})
API_READERS = API_AUTHORS | {Role.SUBSCRIBER}
CONSUMERS = frozenset({Role.ADMIN, Role.SUBSCRIBER})
OWN = frozenset({Role.SUBSCRIBER})


def _read(roles: frozenset[Role], target: str, own_only: frozenset[Role] = frozenset()) -> Permission:
    return Permission(roles, own_only, changes=False, target=target)


def _change(roles: frozenset[Role], target: str, target_field: str = "id",
            own_only: frozenset[Role] = frozenset()) -> Permission:
    return Permission(roles, own_only, changes=True, target=target, target_field=target_field)


_P = "portcullis.admin.v1"

PERMISSIONS: Mapping[str, Permission] = MappingProxyType({
    f"{_P}.ApiService/CreateApi": _change(API_AUTHORS, "api", ""),
    f"{_P}.ApiService/GetApi": _read(API_READERS, "api"),
    f"{_P}.ApiService/ListApis": _read(API_READERS, "api"),
    f"{_P}.ApiService/UpdateApi": _change(API_AUTHORS, "api"),
    f"{_P}.ApiService/DeleteApi": _change(API_AUTHORS, "api"),
    f"{_P}.ApiService/ChangeApiLifecycle": _change(LIFECYCLE, "api"),
    f"{_P}.ApiService/SetApiDefinition": _change(API_AUTHORS, "api_definition"),
    f"{_P}.ApiService/GetApiDefinition": _read(API_READERS, "api_definition"),
    f"{_P}.ApiService/DeleteApiDefinition": _change(API_AUTHORS, "api_definition"),
    f"{_P}.ApplicationService/CreateApplication": _change(CONSUMERS, "application", "", OWN),
    f"{_P}.ApplicationService/GetApplication": _read(CONSUMERS, "application", OWN),
    f"{_P}.ApplicationService/ListApplications": _read(CONSUMERS, "application", OWN),
    f"{_P}.ApplicationService/UpdateApplication": _change(CONSUMERS, "application", "id", OWN),
    f"{_P}.ApplicationService/DeleteApplication": _change(CONSUMERS, "application", "id", OWN),
    f"{_P}.ApplicationService/GetApplicationUsage": _read(CONSUMERS, "application", OWN),
    f"{_P}.SubscriptionService/CreateSubscription": _change(CONSUMERS, "subscription", "", OWN),
    f"{_P}.SubscriptionService/GetSubscription": _read(CONSUMERS, "subscription", OWN),
    f"{_P}.SubscriptionService/ListSubscriptions": _read(CONSUMERS, "subscription", OWN),
    f"{_P}.SubscriptionService/UpdateSubscription": _change(CONSUMERS, "subscription", "id", OWN),
    f"{_P}.SubscriptionService/DeleteSubscription": _change(CONSUMERS, "subscription", "id", OWN),
    f"{_P}.ApiKeyService/GenerateApiKey": _change(CONSUMERS, "api_key", "", OWN),
    f"{_P}.ApiKeyService/GetApiKey": _read(CONSUMERS, "api_key", OWN),
    f"{_P}.ApiKeyService/ListApiKeys": _read(CONSUMERS, "api_key", OWN),
    f"{_P}.ApiKeyService/RegenerateApiKey": _change(CONSUMERS, "api_key", "id", OWN),
    f"{_P}.ApiKeyService/RevokeApiKey": _change(CONSUMERS, "api_key", "id", OWN),
    f"{_P}.ApiKeyService/AssociateApiKey": _change(CONSUMERS, "api_key", "id", OWN),
    f"{_P}.ApiKeyService/DissociateApiKey": _change(CONSUMERS, "api_key", "id", OWN),
    f"{_P}.ApplicationKeyService/GenerateApplicationKey": _change(CONSUMERS, "application_key", "", OWN),
    f"{_P}.ApplicationKeyService/MapApplicationKey": _change(CONSUMERS, "application_key", "", OWN),
    f"{_P}.ApplicationKeyService/ListApplicationKeys": _read(CONSUMERS, "application_key", OWN),
    f"{_P}.ApplicationKeyService/GetApplicationKey": _read(CONSUMERS, "application_key", OWN),
    f"{_P}.ApplicationKeyService/UpdateApplicationKey": _change(CONSUMERS, "application_key", "id", OWN),
    f"{_P}.ApplicationKeyService/DeleteApplicationKey": _change(CONSUMERS, "application_key", "id", OWN),
    f"{_P}.ApplicationKeyService/CreateConsumerSecret": _change(CONSUMERS, "consumer_secret", "", OWN),
    f"{_P}.ApplicationKeyService/ListConsumerSecrets": _read(CONSUMERS, "consumer_secret", OWN),
    f"{_P}.ApplicationKeyService/DeleteConsumerSecret": _change(CONSUMERS, "consumer_secret", "id", OWN),
    f"{_P}.ApplicationKeyService/RegenerateConsumerSecret": _change(CONSUMERS, "consumer_secret", "", OWN),
    f"{_P}.ThrottlingPolicyService/CreateThrottlingPolicy": _change(ADMIN, "throttling_policy", ""),
    f"{_P}.ThrottlingPolicyService/GetThrottlingPolicy": _read(API_READERS, "throttling_policy"),
    f"{_P}.ThrottlingPolicyService/ListThrottlingPolicies": _read(API_READERS, "throttling_policy"),
    f"{_P}.ThrottlingPolicyService/UpdateThrottlingPolicy": _change(ADMIN, "throttling_policy"),
    f"{_P}.ThrottlingPolicyService/DeleteThrottlingPolicy": _change(ADMIN, "throttling_policy"),
    f"{_P}.OrganizationService/CreateOrganization": _change(ADMIN, "organization"),
    f"{_P}.OrganizationService/ListOrganizations": _read(ADMIN, "organization"),
    f"{_P}.OrganizationService/UpdateOrganization": _change(ADMIN, "organization"),
    # Admins of the default organization only (the service checks): audited in both organizations.
    f"{_P}.OrganizationService/CreateOrganizationAdminCredential": _change(ADMIN, "organization"),
    f"{_P}.SigningKeyService/ListSigningKeys": _read(ADMIN, "signing_key"),
    f"{_P}.SigningKeyService/RotateSigningKey": _change(ADMIN, "signing_key", ""),
    f"{_P}.KeyManagerService/CreateKeyManager": _change(ADMIN, "key_manager", ""),
    f"{_P}.KeyManagerService/GetKeyManager": _read(ADMIN, "key_manager"),
    f"{_P}.KeyManagerService/ListKeyManagers": _read(ADMIN, "key_manager"),
    f"{_P}.KeyManagerService/UpdateKeyManager": _change(ADMIN, "key_manager"),
    f"{_P}.KeyManagerService/DeleteKeyManager": _change(ADMIN, "key_manager"),
    f"{_P}.UserService/CreateUser": _change(ADMIN, "user", ""),
    f"{_P}.UserService/GetUser": _read(ADMIN, "user"),
    f"{_P}.UserService/ListUsers": _read(ADMIN, "user"),
    f"{_P}.UserService/UpdateUser": _change(ADMIN, "user"),
    f"{_P}.UserService/DeleteUser": _change(ADMIN, "user"),
    f"{_P}.UserService/CreateScope": _change(ADMIN, "scope", ""),
    f"{_P}.UserService/ListScopes": _read(ADMIN, "scope"),
    f"{_P}.UserService/UpdateScope": _change(ADMIN, "scope"),
    f"{_P}.UserService/DeleteScope": _change(ADMIN, "scope"),
    f"{_P}.BackendSigningKeyService/ListBackendSigningKeys": _read(ADMIN, "backend_signing_key"),
    f"{_P}.BackendSigningKeyService/RotateBackendSigningKey": _change(ADMIN, "backend_signing_key", ""),
    f"{_P}.AuditService/ListAuditRecords": _read(ADMIN, "audit_record"),
    f"{_P}.GatewayService/ListGateways": _read(ADMIN, "gateway"),
    # Labels mark which objects a tool owns (apply --prune deletes by them): admins only.
    f"{_P}.LabelService/SetLabels": _change(ADMIN, "labels", "object_id"),
    f"{_P}.LabelService/ListLabels": _read(ADMIN, "labels"),
    f"{_P}.DecisionService/ExplainDecision": _read(ADMIN, "decision"),
})


def check_table(methods: set[str] | frozenset[str], table: Mapping[str, Permission] = PERMISSIONS) -> None:
    """Start-up check: every served RPC has exactly one row, and no row names another RPC."""
    missing, extra = set(methods) - table.keys(), table.keys() - set(methods)
    if missing or extra:
        raise RuntimeError(f"admin permission table out of date: missing {sorted(missing)}, unknown {sorted(extra)}")
