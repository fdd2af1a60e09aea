"""The decision pipeline: `decide()` runs the stages in order (route, credentials, IP and
referrer restrictions, subscription, scope, backend JWT); each stage is a small module here
or, for credentials, in authz_server.credentials."""

from authz_server.context import Allow, Identity, QueryParam, RequestContext, Route
from authz_server.pipeline.decide import Decision, decide

__all__ = ["Allow", "Decision", "Identity", "QueryParam", "RequestContext", "Route", "decide"]
