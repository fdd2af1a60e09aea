"""GatewayService.ListGateways: the Envoys following this admin_api, for admins of the
default organization (the gateways serve every organization)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from admin_api.access.caller import Caller
from admin_api.errors import PermissionDenied
from admin_api.services.organizations import DEFAULT_ORGANIZATION
from admin_api.xds.gateways import GatewayStatus, registry_for
from portcullis.admin.v1 import gateways_pb2


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def gateway_pb(status: GatewayStatus) -> gateways_pb2.Gateway:
    message = gateways_pb2.Gateway(
        node_id=status.node_id, node_cluster=status.node_cluster, envoy_version=status.envoy_version,
        peer=status.peer, connected=status.connected, acked_version=status.acked_version,
        acked_clusters_version=status.acked.get("clusters", ""),
        acked_routes_version=status.acked.get("routes", ""), streams=status.streams,
        connected_at=_timestamp(status.connected_at), disconnected_at=_timestamp(status.disconnected_at),
    )
    nack = status.last_nack
    if nack is not None:
        message.last_nack.CopyFrom(gateways_pb2.GatewayNack(
            type=nack.type, version=nack.version, detail=nack.detail, api_ids=list(nack.api_ids),
            time=_timestamp(nack.time)))
    return message


def list_gateways(store: object, request: gateways_pb2.ListGatewaysRequest,
                  caller: Caller) -> gateways_pb2.ListGatewaysResponse:
    if caller.organization_id != DEFAULT_ORGANIZATION:
        raise PermissionDenied("gateways serve every organization: only admins of the default organization "
                               "may list them")
    registry = registry_for(store)
    return gateways_pb2.ListGatewaysResponse(gateways=[gateway_pb(s) for s in registry.gateways()],
                                             current_version=registry.serving_version)
