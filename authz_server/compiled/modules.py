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
)

# The shared library's module name (mypyc names it "<group>__mypyc").
GROUP = "portcullis_compiled"
