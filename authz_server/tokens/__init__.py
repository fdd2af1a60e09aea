"""OAuth2 token validation helpers: the unverified JWT reader, RFC 7662 introspection,
bounded caches and the services bundle the pipeline's OAuth2 stage uses."""
