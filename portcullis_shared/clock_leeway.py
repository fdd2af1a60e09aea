"""How much clock skew a key manager may allow on `exp`/`nbf`, for admin_api (which
validates the setting) and authz_server (which applies it) alike.

The maximum also bounds how long a revocation must outlive its token: a JWT is accepted
until `exp + leeway`, so its revocation record is kept, and honoured, until
`exp + MAX_LEEWAY_SECONDS` (whatever leeway its key manager has now, it may be raised up
to the maximum later).
"""

DEFAULT_LEEWAY_SECONDS = 30
MAX_LEEWAY_SECONDS = 300
