"""authz_server: the Envoy ext_authz decision service of Portcullis.

Envoy asks `Check`; the servicer turns the protobuf into a frozen request context, the
`pipeline.decide()` answers Allow or a Denial from the in-memory policy index, and
the adapter turns that answer back into a CheckResponse. The index is fed by
`PolicySync.Watch` from admin_api.
"""

from authz_server import compiled as _compiled

_compiled.install()
