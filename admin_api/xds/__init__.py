"""admin_api as Envoy's xDS server: every deployed API becomes routes and clusters that
every connected Envoy follows (Aggregated Discovery Service, state of the world)."""
