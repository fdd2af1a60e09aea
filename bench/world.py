"""The policy the in-process benches decide on: one published API, one application
subscribed to it with an API key, and the Unlimited policies every organization has."""

from __future__ import annotations


def api_key_world(api, key: str, tier: str = "Unlimited") -> list:
    """`api` (an admin_pb2.Api with id "api-1") in organization "default", application
    "app-1" subscribed on `tier`, its production API key `key`, and Unlimited of each kind."""
    from portcullis.admin.v1 import admin_pb2, throttling_pb2
    from portcullis.sync.v1 import sync_pb2
    from portcullis_shared.credentials import credential_hash

    policy = throttling_pb2.ThrottlingPolicy
    return [
        admin_pb2.Organization(id="default", name="Default"),
        api,
        admin_pb2.Application(id="app-1", organization_id="default", name="app-1", owner="alice",
                              throttling_tier="Unlimited"),
        admin_pb2.Subscription(id="sub-1", organization_id="default", application_id="app-1", api_id="api-1",
                               tier=tier, status=admin_pb2.Subscription.ACTIVE),
        sync_pb2.ApiKeyRecord(id="key-1", organization_id="default", api_id="api-1", key_hash=credential_hash(key),
                              environment=admin_pb2.PRODUCTION, application_id="app-1"),
        *(policy(id=f"tp-u-{kind}", organization_id="default", name="Unlimited", kind=kind)
          for kind in (policy.SUBSCRIPTION, policy.APPLICATION, policy.API)),
    ]
