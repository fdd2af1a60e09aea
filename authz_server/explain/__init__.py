"""Decision explain: run the production decision on a described request and answer the
stage trace (authz_server.explain.handler serves it, authz_server.explain.trace builds it)."""
