"""admin_api's xDS figures for /metrics, read from the GatewayRegistry at scrape time:
streams open, the version served, and what each connected Envoy acknowledged.

Only connected gateways get a `node_id` label (bounded by the streams open, not by the
up to MAX_DISCONNECTED gateways the registry remembers). A node id is the Envoy's own
name for itself (`--service-node`), never a credential."""

from __future__ import annotations

from admin_api.xds.gateways import GatewayRegistry

Gauge = tuple[str, str, dict[str, str], float]


def _number(version: str) -> float | None:
    """Versions are change-log revisions ("" before any): as a number, or None."""
    return float(version) if version.isdigit() else None


def gateway_gauges(registry: GatewayRegistry) -> list[Gauge]:
    gateways = registry.gateways()
    connected = [g for g in gateways if g.connected]
    gauges: list[Gauge] = [
        ("portcullis_admin_xds_streams", "xDS (ADS) streams from Envoy gateways open now", {},
         float(sum(g.streams for g in gateways))),
        ("portcullis_admin_xds_gateways_connected", "Envoy gateways with at least one xDS stream open", {},
         float(len(connected))),
    ]
    serving = _number(registry.serving_version)
    if serving is not None:
        gauges.append(("portcullis_admin_xds_version", "The xDS version this admin_api serves now (a change-log "
                                                       "revision)", {}, serving))
    for gateway in connected:
        for type_name, version in sorted(gateway.acked.items()):
            acked = _number(version)
            if acked is not None:
                gauges.append(("portcullis_admin_xds_acked_version",
                               "The version each connected gateway acknowledged, per resource type",
                               {"node_id": gateway.node_id, "type": type_name}, acked))
        in_sync = bool(registry.serving_version) and gateway.acked_version == registry.serving_version
        gauges.append(("portcullis_admin_xds_gateway_in_sync",
                       "1 when the gateway acknowledged the version served now for every type it follows",
                       {"node_id": gateway.node_id}, 1.0 if in_sync else 0.0))
    return gauges
