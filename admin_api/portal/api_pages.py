"""API pages: the catalogue (PUBLISHED and DEPRECATED APIs, searchable), one API with
its resources, security and tiers, its OpenAPI document (rendered, and for download),
subscribing an application, the user's API keys for it (generate, regenerate, revoke,
associate) and Try it."""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from admin_api.errors import InvalidArgument, NotFound
from admin_api.portal import openapi_view, try_it
from admin_api.portal.pages import Ctx, page
from admin_api.portal.web import SECURITY_HEADERS, Portal, as_dict, redirect, render, rpc
from admin_api.services import openapi_documents
from portcullis.admin.v1 import admin_pb2, throttling_pb2

LISTED_STATES = ("PUBLISHED", "DEPRECATED")
_LISTED = frozenset(admin_pb2.Api.LifecycleState.Value(state) for state in LISTED_STATES)
_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_PAGES = 20


async def published_apis(ctx: Ctx) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = ""
    for _ in range(MAX_PAGES):
        answer = await rpc(ctx.portal, ctx.caller, "ApiService/ListApis",
                           admin_pb2.ListApisRequest(page_size=500, page_token=token))
        found += [as_dict(api) for api in answer.apis]
        token = answer.next_page_token
        if not token:
            break
    return [api for api in found if api["lifecycle_state"] in LISTED_STATES]


async def my_applications(ctx: Ctx) -> list[dict[str, Any]]:
    answer = await rpc(ctx.portal, ctx.caller, "ApplicationService/ListApplications",
                       admin_pb2.ListApplicationsRequest(owner=ctx.caller.subject, page_size=500))
    return [as_dict(application) for application in answer.applications]


async def policies(ctx: Ctx, kind: int) -> list[dict[str, Any]]:
    answer = await rpc(ctx.portal, ctx.caller, "ThrottlingPolicyService/ListThrottlingPolicies",
                       throttling_pb2.ListThrottlingPoliciesRequest(kind=kind, page_size=500))
    return [as_dict(policy) for policy in answer.policies]


def matches(api: dict[str, Any], query: str) -> bool:
    text = " ".join(str(api.get(name, "")) for name in ("name", "version", "description", "base_path")).lower()
    return all(word in text for word in query.lower().split())


async def catalogue(ctx: Ctx) -> Response:
    query = ctx.request.query_params.get("q", "")[:200]
    apis = [api for api in await published_apis(ctx) if matches(api, query)]
    apis.sort(key=lambda api: (api["name"].lower(), api["version"]))
    return render("apis.html", ctx.session, apis=apis, query=query)


async def definition_of(ctx: Ctx, api_id: str) -> openapi_documents.ParsedDocument | None:
    """The API's OpenAPI document, parsed (it was checked when it was set); None: it has none."""
    try:
        answer = await rpc(ctx.portal, ctx.caller, "ApiService/GetApiDefinition",
                           admin_pb2.GetApiDefinitionRequest(id=api_id))
    except NotFound:
        return None
    return await run_in_threadpool(openapi_documents.parse, answer.document)


async def api_page(ctx: Ctx, result: try_it.TryResult | None = None, try_error: str = "",
                   tried: dict[str, str] | None = None) -> Response:
    api = as_dict(await rpc(ctx.portal, ctx.caller, "ApiService/GetApi", admin_pb2.GetApiRequest(id=ctx.param("api_id"))))
    if api["lifecycle_state"] not in LISTED_STATES:
        return render("message.html", ctx.session, status=404, title="Not found",
                      text=f"API {ctx.param('api_id')!r} not found")
    applications = await my_applications(ctx)
    mine = {application["id"] for application in applications}
    subscriptions = await rpc(ctx.portal, ctx.caller, "SubscriptionService/ListSubscriptions",
                              admin_pb2.ListSubscriptionsRequest(api_id=api["id"], page_size=500))
    keys = await rpc(ctx.portal, ctx.caller, "ApiKeyService/ListApiKeys",
                     admin_pb2.ListApiKeysRequest(api_id=api["id"], include_revoked=True, page_size=500))
    names = {application["id"]: application["name"] for application in applications}
    definition = await definition_of(ctx, api["id"])
    reference = await run_in_threadpool(openapi_view.document_view, definition) if definition else None
    return render("api.html", ctx.session, api=api, gateway_url=ctx.portal.gateway_url.rstrip("/"),
                  reference=reference, reference_format=definition.format if definition else "",
                  applications=applications, names=names,
                  tiers=await policies(ctx, throttling_pb2.ThrottlingPolicy.SUBSCRIPTION),
                  subscriptions=[as_dict(s) for s in subscriptions.subscriptions if s.application_id in mine],
                  api_keys=[as_dict(k) for k in keys.api_keys if k.owner == ctx.caller.subject],
                  result=result, try_error=try_error, tried=tried or {})


async def download_definition(ctx: Ctx) -> Response:
    """The OpenAPI document as a file, with the gateway's URL in place of its servers."""
    api = await rpc(ctx.portal, ctx.caller, "ApiService/GetApi", admin_pb2.GetApiRequest(id=ctx.param("api_id")))
    definition = await definition_of(ctx, api.id) if api.lifecycle_state in _LISTED else None
    if definition is None:
        return render("message.html", ctx.session, status=404, title="Not found",
                      text="This API has no OpenAPI document.")
    text = await run_in_threadpool(openapi_view.for_download, definition,
                                   ctx.portal.gateway_url.rstrip("/") + api.base_path)
    filename = _FILENAME.sub("-", f"{api.name}-{api.version}")[:100] + "." + definition.format
    media_type = "application/json" if definition.format == "json" else "application/yaml"
    return Response(text, media_type=media_type, headers={
        **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})


async def subscribe(ctx: Ctx) -> Response:
    api_id = ctx.param("api_id")
    await rpc(ctx.portal, ctx.caller, "SubscriptionService/CreateSubscription",
              admin_pb2.CreateSubscriptionRequest(application_id=ctx.field("application_id"), api_id=api_id,
                                                  tier=ctx.field("tier")))
    ctx.session.notify("ok", "Subscribed.")
    return redirect(f"/portal/apis/{api_id}")


def _list_field(value: str) -> list[str]:
    return [item.strip() for item in value.replace(",", "\n").splitlines() if item.strip()]


def _days(value: str) -> int:
    if not value:
        return 0
    if not value.isdigit() or len(value) > 5:
        raise InvalidArgument("validity_days: a whole number of days (0 or empty: never expires)", field="validity_days")
    return int(value)


async def generate_key(ctx: Ctx) -> Response:
    api_id = ctx.param("api_id")
    environment = admin_pb2.SANDBOX if ctx.field("environment") == "SANDBOX" else admin_pb2.PRODUCTION
    answer = await rpc(ctx.portal, ctx.caller, "ApiKeyService/GenerateApiKey", admin_pb2.GenerateApiKeyRequest(
        api_id=api_id, name=ctx.field("name"), environment=environment,
        validity_days=_days(ctx.field("validity_days")), allowed_ips=_list_field(ctx.field("allowed_ips")),
        allowed_referrers=_list_field(ctx.field("allowed_referrers")), application_id=ctx.field("application_id")))
    ctx.session.show_once(f"API key {answer.api_key.name}", answer.value)
    return redirect(f"/portal/apis/{api_id}")


async def key_action(ctx: Ctx) -> Response:
    key_id, action, api_id = ctx.param("key_id"), ctx.param("action"), ctx.param("api_id")
    if action == "revoke":
        await rpc(ctx.portal, ctx.caller, "ApiKeyService/RevokeApiKey", admin_pb2.RevokeApiKeyRequest(id=key_id))
        ctx.session.notify("ok", "The API key is revoked.")
    elif action == "regenerate":
        answer = await rpc(ctx.portal, ctx.caller, "ApiKeyService/RegenerateApiKey",
                           admin_pb2.RegenerateApiKeyRequest(id=key_id))
        ctx.session.show_once(f"API key {answer.api_key.name} (regenerated; the old value is revoked)", answer.value)
    elif action == "associate":
        application_id = ctx.field("application_id")
        if application_id:
            await rpc(ctx.portal, ctx.caller, "ApiKeyService/AssociateApiKey",
                      admin_pb2.AssociateApiKeyRequest(id=key_id, application_id=application_id))
        else:
            await rpc(ctx.portal, ctx.caller, "ApiKeyService/DissociateApiKey",
                      admin_pb2.DissociateApiKeyRequest(id=key_id))
        ctx.session.notify("ok", "Saved.")
    else:
        raise InvalidArgument(f"unknown action {action!r}")
    return redirect(f"/portal/apis/{api_id}")


async def try_call(ctx: Ctx) -> Response:
    api = await rpc(ctx.portal, ctx.caller, "ApiService/GetApi", admin_pb2.GetApiRequest(id=ctx.param("api_id")))
    tried = {"method": ctx.field("method") or "GET", "path": ctx.field("path", try_it.MAX_PATH),
             "kind": ctx.field("kind")}
    try:
        header = api.security.api_key.header if api.security.HasField("api_key") else ""
        headers = try_it.build_headers(tried["kind"], ctx.field("credential", 8192), header)
        result = await try_it.call_gateway(ctx.portal.gateway_url, api.base_path, tried["method"], tried["path"],
                                           headers, verify=ctx.portal.gateway_verify)
    except try_it.BadTryRequest as exc:
        return await api_page(ctx, try_error=str(exc), tried=tried)
    return await api_page(ctx, result=result, tried=tried)


def api_routes(portal: Portal) -> list[Route]:
    back = "/apis/{api_id}"
    return [
        page(portal, "/portal/apis", catalogue),
        page(portal, "/portal/apis/{api_id}", api_page),
        page(portal, "/portal/apis/{api_id}/openapi", download_definition),
        page(portal, "/portal/apis/{api_id}/subscribe", subscribe, method="POST", back=back),
        page(portal, "/portal/apis/{api_id}/api-keys", generate_key, method="POST", back=back),
        page(portal, "/portal/apis/{api_id}/api-keys/{key_id}/{action}", key_action, method="POST", back=back),
        page(portal, "/portal/apis/{api_id}/try", try_call, method="POST", back=back),
    ]
