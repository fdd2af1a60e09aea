"""Everything that talks to key managers: JWKS / certificate fetching, parsing and caching,
RFC 7662 introspection, their HTTP client, and the bounded caches (verified JWTs,
introspection results) that keep those calls off the hot path."""
