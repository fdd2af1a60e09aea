"""The decision pipeline: pure functions of the request context, the index and the clock."""

from authz_server.context import Allow, Identity, QueryParam, RequestContext, Route
from authz_server.pipeline.decide import Decision, decide

__all__ = ["Allow", "Decision", "Identity", "QueryParam", "RequestContext", "Route", "decide"]
