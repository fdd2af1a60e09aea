"""Verification keys of key managers: JWKS / certificate parsing and the JWKS cache."""
