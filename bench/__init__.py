"""Portcullis benchmarks (`make bench`): direct Check throughput per credential path,
end to end through Envoy against its native jwt_authn, and scale. Nothing here runs in
`make test` except the smoke test that runs this harness on a tiny configuration."""
