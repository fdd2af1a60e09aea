"""The signed backend JWT: claims, the one-method signer, the cache, and the issuer that
ties them together (the pipeline's response stage calls the issuer)."""
