"""Application pages: the user's applications (create, rename, tier, delete), their
subscriptions (cancel), their production and sandbox keys at the resident key manager
(generate, delete), consumer secrets when several are allowed (create, delete) and a
test access token (client_credentials with a consumer secret the user pastes)."""

from __future__ import annotations

from typing import Any

from google.protobuf import field_mask_pb2
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from admin_api.errors import InvalidArgument
from admin_api.portal import signin
from admin_api.services import key_generation_access
from admin_api.portal.api_pages import _days, policies, published_apis
from admin_api.portal.pages import Ctx, page
from admin_api.portal.web import Portal, as_dict, redirect, render, rpc
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, throttling_pb2

ENVIRONMENTS = ("PRODUCTION", "SANDBOX")


async def applications(ctx: Ctx) -> Response:
    answer = await rpc(ctx.portal, ctx.caller, "ApplicationService/ListApplications",
                       admin_pb2.ListApplicationsRequest(owner=ctx.caller.subject, page_size=500))
    return render("applications.html", ctx.session, applications=[as_dict(a) for a in answer.applications],
                  tiers=await policies(ctx, throttling_pb2.ThrottlingPolicy.APPLICATION))


async def create_application(ctx: Ctx) -> Response:
    made = await rpc(ctx.portal, ctx.caller, "ApplicationService/CreateApplication",
                     admin_pb2.CreateApplicationRequest(name=ctx.field("name"), throttling_tier=ctx.field("tier"),
                                                        description=ctx.field("description")))
    ctx.session.notify("ok", f"Application {made.name} created.")
    return redirect(f"/portal/applications/{made.id}")


# The periods the usage table offers (GetApplicationUsage's hours).
USAGE_HOURS = {"1": 1, "6": 6, "24": 24}


async def application_page(ctx: Ctx) -> Response:
    application_id = ctx.param("application_id")
    application = as_dict(await rpc(ctx.portal, ctx.caller, "ApplicationService/GetApplication",
                                    admin_pb2.GetApplicationRequest(id=application_id)))
    subscriptions = await rpc(ctx.portal, ctx.caller, "SubscriptionService/ListSubscriptions",
                              admin_pb2.ListSubscriptionsRequest(application_id=application_id, page_size=500))
    apis = {api["id"]: api for api in await published_apis(ctx)}
    keys = await rpc(ctx.portal, ctx.caller, "ApplicationKeyService/ListApplicationKeys",
                     application_keys_pb2.ListApplicationKeysRequest(application_id=application_id))
    by_environment: dict[str, dict[str, Any]] = {}
    for key in keys.keys:
        entry = as_dict(key)
        if ctx.portal.multiple_secrets:
            secrets = await rpc(ctx.portal, ctx.caller, "ApplicationKeyService/ListConsumerSecrets",
                                application_keys_pb2.ListConsumerSecretsRequest(application_key_id=key.id))
            entry["secrets"] = [as_dict(secret) for secret in secrets.secrets]
        by_environment.setdefault(entry["environment"], entry)
    key_managers = await run_in_threadpool(key_generation_access.key_managers_for, ctx.portal.dispatcher.store,
                                           ctx.caller)
    hours = USAGE_HOURS.get(ctx.request.query_params.get("hours", ""), 24)
    usage = await rpc(ctx.portal, ctx.caller, "ApplicationService/GetApplicationUsage",
                      admin_pb2.GetApplicationUsageRequest(id=application_id, hours=hours))
    return render("application.html", ctx.session, application=application, apis=apis, key_managers=key_managers,
                  usage=[as_dict(row) for row in usage.apis], usage_hours=hours, usage_choices=sorted(USAGE_HOURS.values()),
                  subscriptions=[as_dict(s) for s in subscriptions.subscriptions], keys=by_environment,
                  environments=ENVIRONMENTS, multiple_secrets=ctx.portal.multiple_secrets,
                  tiers=await policies(ctx, throttling_pb2.ThrottlingPolicy.APPLICATION))


async def update_application(ctx: Ctx) -> Response:
    application_id = ctx.param("application_id")
    await rpc(ctx.portal, ctx.caller, "ApplicationService/UpdateApplication", admin_pb2.UpdateApplicationRequest(
        id=application_id, application=admin_pb2.Application(name=ctx.field("name"),
                                                              throttling_tier=ctx.field("tier"),
                                                              description=ctx.field("description")),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "throttling_tier", "description"])))
    ctx.session.notify("ok", "Saved.")
    return redirect(f"/portal/applications/{application_id}")


async def delete_application(ctx: Ctx) -> Response:
    await rpc(ctx.portal, ctx.caller, "ApplicationService/DeleteApplication",
              admin_pb2.DeleteApplicationRequest(id=ctx.param("application_id")))
    ctx.session.notify("ok", "Application deleted, with its subscriptions and keys.")
    return redirect("/portal/applications")


async def cancel_subscription(ctx: Ctx) -> Response:
    await rpc(ctx.portal, ctx.caller, "SubscriptionService/DeleteSubscription",
              admin_pb2.DeleteSubscriptionRequest(id=ctx.param("subscription_id")))
    ctx.session.notify("ok", "Subscription cancelled.")
    return redirect(f"/portal/applications/{ctx.param('application_id')}")


async def generate_keys(ctx: Ctx) -> Response:
    application_id = ctx.param("application_id")
    environment = ctx.field("environment")
    if environment not in ENVIRONMENTS:
        raise InvalidArgument("environment: PRODUCTION or SANDBOX")
    answer = await rpc(ctx.portal, ctx.caller, "ApplicationKeyService/GenerateApplicationKey",
                       application_keys_pb2.GenerateApplicationKeyRequest(
                           application_id=application_id, environment=admin_pb2.Environment.Value(environment),
                           key_manager_id=ctx.field("key_manager_id"),
                           settings=application_keys_pb2.OAuthClientSettings(grant_types=["client_credentials"]),
                           secret_description=ctx.field("secret_description"),
                           secret_validity_days=_days(ctx.field("validity_days"))))
    if answer.consumer_secret:
        ctx.session.show_once(f"{environment.title()} consumer secret of {answer.key.consumer_key}",
                              answer.consumer_secret)
    return redirect(f"/portal/applications/{application_id}")


async def delete_keys(ctx: Ctx) -> Response:
    await rpc(ctx.portal, ctx.caller, "ApplicationKeyService/DeleteApplicationKey",
              application_keys_pb2.DeleteApplicationKeyRequest(id=ctx.param("key_id")))
    ctx.session.notify("ok", "Keys deleted: tokens issued to them no longer pass the gateway.")
    return redirect(f"/portal/applications/{ctx.param('application_id')}")


async def create_secret(ctx: Ctx) -> Response:
    answer = await rpc(ctx.portal, ctx.caller, "ApplicationKeyService/CreateConsumerSecret",
                       application_keys_pb2.CreateConsumerSecretRequest(
                           application_key_id=ctx.param("key_id"), description=ctx.field("description"),
                           validity_days=_days(ctx.field("validity_days"))))
    ctx.session.show_once(f"Consumer secret {answer.secret.description or answer.secret.masked_value}",
                          answer.value)
    return redirect(f"/portal/applications/{ctx.param('application_id')}")


async def delete_secret(ctx: Ctx) -> Response:
    await rpc(ctx.portal, ctx.caller, "ApplicationKeyService/DeleteConsumerSecret",
              application_keys_pb2.DeleteConsumerSecretRequest(application_key_id=ctx.param("key_id"),
                                                              id=ctx.param("secret_id")))
    ctx.session.notify("ok", "Consumer secret deleted.")
    return redirect(f"/portal/applications/{ctx.param('application_id')}")


async def test_token(ctx: Ctx) -> Response:
    key = await rpc(ctx.portal, ctx.caller, "ApplicationKeyService/GetApplicationKey",
                    application_keys_pb2.GetApplicationKeyRequest(id=ctx.param("key_id")))
    if key.application_id != ctx.param("application_id"):
        raise InvalidArgument("this key belongs to another application")
    answer = await run_in_threadpool(signin.client_token, ctx.portal.resident, key.consumer_key,
                                     ctx.field("consumer_secret", 512), ctx.field("scope", 1000))
    token = answer.get("access_token")
    if isinstance(token, str):
        scope = answer.get("scope") or "(none)"
        ctx.session.show_once(f"Access token (expires in {answer.get('expires_in')} s, scopes: {scope})", token)
    else:
        ctx.session.notify("error", f"The token endpoint refused: {answer.get('error_description') or answer.get('error')}")
    return redirect(f"/portal/applications/{ctx.param('application_id')}")


def application_routes(portal: Portal) -> list[Route]:
    back = "/applications/{application_id}"
    base = "/portal/applications/{application_id}"
    return [
        page(portal, "/portal/applications", applications),
        page(portal, "/portal/applications", create_application, method="POST", back="/applications"),
        page(portal, base, application_page),
        page(portal, base, update_application, method="POST", back=back),
        page(portal, base + "/delete", delete_application, method="POST", back=back),
        page(portal, base + "/subscriptions/{subscription_id}/delete", cancel_subscription, method="POST", back=back),
        page(portal, base + "/keys", generate_keys, method="POST", back=back),
        page(portal, base + "/keys/{key_id}/delete", delete_keys, method="POST", back=back),
        page(portal, base + "/keys/{key_id}/secrets", create_secret, method="POST", back=back),
        page(portal, base + "/keys/{key_id}/secrets/{secret_id}/delete", delete_secret, method="POST", back=back),
        page(portal, base + "/keys/{key_id}/token", test_token, method="POST", back=back),
    ]
