"""Backend JWTs, admin_api's side: the signing key ring and the per-API configuration."""
