"""The one entry point of the admin services for every transport (gRPC and REST).

`HANDLERS` is the registry: one row per RPC of portcullis.admin.v1, checked against the
service descriptors when a Dispatcher is built, so an RPC without a handler (or a handler
without an RPC) is a start-up error, not a runtime surprise. Every call is admitted by
the permission table (`admin_api.access.permissions`, checked against the RPCs likewise) and every
change is recorded in the audit log (`admin_api.audit`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from admin_api.access import auth
from admin_api.access.caller import Caller, Role
from admin_api.access.permissions import PERMISSIONS, Permission, check_table
from admin_api.audit import log as audit_log
from admin_api.errors import AdminError, InvalidArgument, NotFound, PermissionDenied
from admin_api.metrics import RPC_SECONDS, RPCS
from admin_api.schema import admin_services
from admin_api.services import (
    api_definitions, api_keys, apis, application_keys, applications, audit, backend_signing_keys, consumer_secrets,
    decisions, key_managers, labels, organization_admins, organizations, signing_keys, subscriptions,
    throttling_policies, usage, users,
)
from admin_api.store.unit_of_work import Store
from admin_api.xds import listing as gateways

Handler = Callable[[Store, Message, Caller], Message]

_PACKAGE = "portcullis.admin.v1"
log = logging.getLogger(__name__)

HANDLERS: Mapping[str, Callable[..., Message]] = MappingProxyType({
    f"{_PACKAGE}.ApiService/CreateApi": apis.create_api,
    f"{_PACKAGE}.ApiService/GetApi": apis.get_api,
    f"{_PACKAGE}.ApiService/ListApis": apis.list_apis,
    f"{_PACKAGE}.ApiService/UpdateApi": apis.update_api,
    f"{_PACKAGE}.ApiService/DeleteApi": apis.delete_api,
    f"{_PACKAGE}.ApiService/ChangeApiLifecycle": apis.change_api_lifecycle,
    f"{_PACKAGE}.ApiService/SetApiDefinition": api_definitions.set_api_definition,
    f"{_PACKAGE}.ApiService/GetApiDefinition": api_definitions.get_api_definition,
    f"{_PACKAGE}.ApiService/DeleteApiDefinition": api_definitions.delete_api_definition,
    f"{_PACKAGE}.ApplicationService/CreateApplication": applications.create_application,
    f"{_PACKAGE}.ApplicationService/GetApplication": applications.get_application,
    f"{_PACKAGE}.ApplicationService/ListApplications": applications.list_applications,
    f"{_PACKAGE}.ApplicationService/UpdateApplication": applications.update_application,
    f"{_PACKAGE}.ApplicationService/DeleteApplication": applications.delete_application,
    f"{_PACKAGE}.ApplicationService/GetApplicationUsage": usage.get_application_usage,
    f"{_PACKAGE}.SubscriptionService/CreateSubscription": subscriptions.create_subscription,
    f"{_PACKAGE}.SubscriptionService/GetSubscription": subscriptions.get_subscription,
    f"{_PACKAGE}.SubscriptionService/ListSubscriptions": subscriptions.list_subscriptions,
    f"{_PACKAGE}.SubscriptionService/UpdateSubscription": subscriptions.update_subscription,
    f"{_PACKAGE}.SubscriptionService/DeleteSubscription": subscriptions.delete_subscription,
    f"{_PACKAGE}.ApiKeyService/GenerateApiKey": api_keys.generate_api_key,
    f"{_PACKAGE}.ApiKeyService/GetApiKey": api_keys.get_api_key,
    f"{_PACKAGE}.ApiKeyService/ListApiKeys": api_keys.list_api_keys,
    f"{_PACKAGE}.ApiKeyService/RegenerateApiKey": api_keys.regenerate_api_key,
    f"{_PACKAGE}.ApiKeyService/RevokeApiKey": api_keys.revoke_api_key,
    f"{_PACKAGE}.ApiKeyService/AssociateApiKey": api_keys.associate_api_key,
    f"{_PACKAGE}.ApiKeyService/DissociateApiKey": api_keys.dissociate_api_key,
    f"{_PACKAGE}.LabelService/SetLabels": labels.set_labels,
    f"{_PACKAGE}.LabelService/ListLabels": labels.list_labels,
    f"{_PACKAGE}.OrganizationService/CreateOrganization": organizations.create_organization,
    f"{_PACKAGE}.OrganizationService/ListOrganizations": organizations.list_organizations,
    f"{_PACKAGE}.OrganizationService/UpdateOrganization": organizations.update_organization,
    f"{_PACKAGE}.OrganizationService/CreateOrganizationAdminCredential":
        organization_admins.create_organization_admin_credential,
    f"{_PACKAGE}.SigningKeyService/ListSigningKeys": signing_keys.list_signing_keys,
    f"{_PACKAGE}.SigningKeyService/RotateSigningKey": signing_keys.rotate_signing_key,
    f"{_PACKAGE}.KeyManagerService/CreateKeyManager": key_managers.create_key_manager,
    f"{_PACKAGE}.KeyManagerService/GetKeyManager": key_managers.get_key_manager,
    f"{_PACKAGE}.KeyManagerService/ListKeyManagers": key_managers.list_key_managers,
    f"{_PACKAGE}.KeyManagerService/UpdateKeyManager": key_managers.update_key_manager,
    f"{_PACKAGE}.KeyManagerService/DeleteKeyManager": key_managers.delete_key_manager,
    f"{_PACKAGE}.ApplicationKeyService/GenerateApplicationKey": application_keys.generate_application_key,
    f"{_PACKAGE}.ApplicationKeyService/MapApplicationKey": application_keys.map_application_key,
    f"{_PACKAGE}.ApplicationKeyService/ListApplicationKeys": application_keys.list_application_keys,
    f"{_PACKAGE}.ApplicationKeyService/GetApplicationKey": application_keys.get_application_key,
    f"{_PACKAGE}.ApplicationKeyService/UpdateApplicationKey": application_keys.update_application_key,
    f"{_PACKAGE}.ApplicationKeyService/DeleteApplicationKey": application_keys.delete_application_key,
    f"{_PACKAGE}.ApplicationKeyService/CreateConsumerSecret": consumer_secrets.create_consumer_secret,
    f"{_PACKAGE}.ApplicationKeyService/ListConsumerSecrets": consumer_secrets.list_consumer_secrets,
    f"{_PACKAGE}.ApplicationKeyService/DeleteConsumerSecret": consumer_secrets.delete_consumer_secret,
    f"{_PACKAGE}.ApplicationKeyService/RegenerateConsumerSecret": consumer_secrets.regenerate_consumer_secret,
    f"{_PACKAGE}.UserService/CreateUser": users.create_user,
    f"{_PACKAGE}.UserService/GetUser": users.get_user,
    f"{_PACKAGE}.UserService/ListUsers": users.list_users,
    f"{_PACKAGE}.UserService/UpdateUser": users.update_user,
    f"{_PACKAGE}.UserService/DeleteUser": users.delete_user,
    f"{_PACKAGE}.UserService/CreateScope": users.create_scope,
    f"{_PACKAGE}.UserService/ListScopes": users.list_scopes,
    f"{_PACKAGE}.UserService/UpdateScope": users.update_scope,
    f"{_PACKAGE}.UserService/DeleteScope": users.delete_scope,
    f"{_PACKAGE}.AuditService/ListAuditRecords": audit.list_audit_records,
    f"{_PACKAGE}.DecisionService/ExplainDecision": decisions.explain_decision,
    f"{_PACKAGE}.BackendSigningKeyService/ListBackendSigningKeys": backend_signing_keys.list_backend_signing_keys,
    f"{_PACKAGE}.BackendSigningKeyService/RotateBackendSigningKey": backend_signing_keys.rotate_backend_signing_key,
    f"{_PACKAGE}.GatewayService/ListGateways": gateways.list_gateways,
    f"{_PACKAGE}.ThrottlingPolicyService/CreateThrottlingPolicy": throttling_policies.create_throttling_policy,
    f"{_PACKAGE}.ThrottlingPolicyService/GetThrottlingPolicy": throttling_policies.get_throttling_policy,
    f"{_PACKAGE}.ThrottlingPolicyService/ListThrottlingPolicies": throttling_policies.list_throttling_policies,
    f"{_PACKAGE}.ThrottlingPolicyService/UpdateThrottlingPolicy": throttling_policies.update_throttling_policy,
    f"{_PACKAGE}.ThrottlingPolicyService/DeleteThrottlingPolicy": throttling_policies.delete_throttling_policy,
})


def admin_methods() -> dict[str, MethodDescriptor]:
    """Every RPC of the admin services by full name, e.g. "portcullis.admin.v1.ApiService/CreateApi"."""
    return {f"{service.full_name}/{method.name}": method
            for service in admin_services()
            for method in service.methods}


class Dispatcher:
    def __init__(self, store: Store, handlers: Mapping[str, Callable[..., Message]] = HANDLERS,
                 permissions: Mapping[str, Permission] = PERMISSIONS) -> None:
        methods = admin_methods()
        missing, extra = methods.keys() - handlers.keys(), handlers.keys() - methods.keys()
        if missing or extra:
            raise RuntimeError(f"admin handler registry out of date: missing {sorted(missing)}, "
                               f"unknown {sorted(extra)}")
        check_table(frozenset(methods), permissions)
        self.store = store
        self.methods: Mapping[str, MethodDescriptor] = MappingProxyType(methods)
        self._handlers = dict(handlers)
        self._permissions = dict(permissions)

    def authenticate(self, bearer_token: str | None) -> Caller:
        """The admin caller holding this token (without the "Bearer " scheme): the bootstrap
        admin token or a resident key manager access token of a user; raises
        Unauthenticated for a missing, unknown, expired, revoked or sync-only token."""
        return auth.admin_caller(self.store, bearer_token)

    def authenticate_sync(self, bearer_token: str | None) -> Caller:
        """The replica holding this token, for PolicySync/Watch only."""
        return auth.caller_for(self.store, bearer_token, role=Role.SYNC)

    def call(self, method_full_name: str, request: Message, caller: Caller) -> Message:
        """Run the RPC; counted in the metrics by method and status code, with its time."""
        started = time.perf_counter()
        code = "INTERNAL"
        try:
            answer = self._call(method_full_name, request, caller)
            code = "OK"
            return answer
        except AdminError as error:
            code = error.grpc_code.name
            raise
        finally:
            if method_full_name in self.methods:   # never a client's free text as a label
                RPCS.labels(method_full_name, code).inc()
                RPC_SECONDS.labels(method_full_name).observe(time.perf_counter() - started)

    def _call(self, method_full_name: str, request: Message, caller: Caller) -> Message:
        method = self.methods.get(method_full_name)
        if method is None:
            raise NotFound(f"unknown method {method_full_name!r}")
        if request.DESCRIPTOR is not method.input_type:
            raise InvalidArgument(f"{method_full_name} takes {method.input_type.full_name}, "
                                  f"not {request.DESCRIPTOR.full_name}")
        permission = self._permissions[method_full_name]
        entry = audit_log.Entry(caller, method_full_name, permission.target, _target_id(request, permission))
        handler = self._handlers[method_full_name]
        try:
            admitted = permission.admit(method_full_name, caller)
            if not permission.changes:
                return handler(self.store, request, admitted)
            # The change and its audit record commit together (see admin_api.audit.log).
            with audit_log.recording(entry):
                return handler(self.store, request, admitted)
        except PermissionDenied as denied:
            try:
                audit_log.record_denial(self.store, entry, denied.message)
            except Exception:
                # The refusal stands whether or not it could be recorded.
                log.exception("could not record a denied %s in the audit log", method_full_name)
            raise


def _target_id(request: Message, permission: Permission) -> str:
    """The id the request names its target by ("" when the call creates it)."""
    field = request.DESCRIPTOR.fields_by_name.get(permission.target_field) if permission.target_field else None
    if field is None or field.type != field.TYPE_STRING or field.is_repeated:
        return ""
    return str(getattr(request, field.name))
