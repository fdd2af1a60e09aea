"""Which authz_server modules are compiled ahead of time with mypyc (README: "How
authz_server is made fast"). Each stays an ordinary module: with no build, or with its
source changed since the build, Python imports the .py and nothing else differs."""

from __future__ import annotations

# One group: mypyc compiles these together into one shared library, so calls between
# them are C calls. A module joins only with a measured gain (bench.call_cost) and its
# tests passing on the compiled build.
COMPILED_MODULES: tuple[str, ...] = (
    "authz_server.h2grpc.frames",
    "authz_server.h2grpc.grpc_wire",
    "authz_server.h2grpc.connection",
    "authz_server.h2grpc.request_head",
    "authz_server.check_servicer",
    "authz_server.envoy_adapter",
    "authz_server.context",
    "authz_server.decision_log",
    "authz_server.pipeline.decide",
    "authz_server.pipeline.route",
    "authz_server.pipeline.subscription",
    "authz_server.pipeline.scope",
    "authz_server.pipeline.throttle",
    "authz_server.pipeline.backend_jwt",
    "authz_server.pipeline.client_ip",
    "authz_server.pipeline.paths",
    "authz_server.pipeline.ip_restriction",
    "authz_server.pipeline.referrer_restriction",
    "authz_server.credentials.api_key",
    "authz_server.credentials.extract",
    "authz_server.credentials.environment",
    "authz_server.credentials.bearer",
    "authz_server.credentials.jwt_parse",
    "authz_server.credentials.jwt_token",
    "authz_server.credentials.token_client",
    "authz_server.key_managers.verified",
    "authz_server.key_managers.jwks_cache",
    "authz_server.credentials.identify",
    "authz_server.index.ids",
    "authz_server.throttle.applicable",
    "authz_server.throttle.fields",
    "authz_server.throttle.limiter",
    "authz_server.backend_jwt.cache",
    "authz_server.backend_jwt.issuer",
    "authz_server.metrics.recorder",
    "authz_server.usage.counter",
)

# The shared library's module name (mypyc names it "<group>__mypyc").
GROUP = "portcullis_compiled"
