"""Decision explain for admins: "why was (or would be) this call denied?".

admin_api holds no policy index, so it asks an authz_server replica (its Explain RPC,
PORTCULLIS_AUTHZ_EXPLAIN_TARGET) to run the production decision on the replica's current
index. Why the replica and not a second implementation here: the answer must be what
Check answers, and only the replica has the index, the JWKS and introspection caches and
the code. Why the sync token: admin_api writes it and the replica already trusts it for
Watch (which streams the whole policy), so explain opens nothing new; the admin's own
credential and role are checked here first. An explain of an API of another
organization is NOT_FOUND, like reading that API.
"""

from __future__ import annotations

from portcullis.admin.v1 import decisions_pb2

from admin_api.access.caller import Caller
from admin_api.errors import FailedPrecondition, InvalidArgument, NotFound
from admin_api.store.unit_of_work import Store

def explain_decision(store: Store, request: decisions_pb2.ExplainDecisionRequest, caller: Caller,
                     ) -> decisions_pb2.DecisionTrace:
    explainer = store.config.explainer   # an admin_api.replicas.ReplicaExplainer
    if explainer is None:
        raise FailedPrecondition("decision explain is not configured (no authz_server replica)")
    if not request.method.strip() or not request.path.startswith("/"):
        raise InvalidArgument("method and a path starting with / are required")
    trace = explainer.explain(request)
    if trace.HasField("api") and trace.api.organization_id != caller.organization_id:
        raise NotFound("no API of this organization is served at this path")
    return trace
