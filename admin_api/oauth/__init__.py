"""The resident key manager: Portcullis's own OAuth2 authorization server.

Grant handling is authlib's (`admin_api.oauth.server`); this package supplies the
storage (clients, codes, tokens), the signing keys, and the HTTP endpoints mounted on
admin_api's REST port (`admin_api.oauth.routes`).
"""
