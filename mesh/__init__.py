"""The local mesh: renders the Envoy config and starts, watches and stops every process."""
