"""The resident key manager's state: the tokens it issues (`tokens`) and the keys it signs
them with (`signing_keys`). Its OAuth2 protocol surface (authlib's authorization server,
grants, HTTP endpoints) is `admin_api.transports.oauth2`; the admin callers its tokens
stand for are found by `admin_api.access.user_auth`.
"""
