"""A small, fast gRPC server for unary calls over cleartext HTTP/2 (h2c, prior knowledge).

Why not grpcio's server here: on this hot path grpcio costs 100-200 µs of CPU per call
(completion queue, thread hand-off, GIL), several times the decision itself. This server
reads and writes frames on one asyncio thread, decodes request headers with `hpack`, and
answers with pre-encoded header blocks: about 20 µs per call. It speaks only what an
ext_authz client needs (unary calls, no compression, no TLS); grpcio stays available as
`PORTCULLIS_AUTHZ_FRONTEND=grpcio` for reflection and streaming health.
"""
