"""The developer portal: server-rendered pages on admin_api's REST port under /portal,
where API consumers (users with the subscriber role) sign in with the resident key
manager and manage their own applications, subscriptions and keys.

The portal is a public OAuth client of the resident key manager (authorization code with
PKCE S256). The user's access token stays on the server, in a session the browser knows
only by an HttpOnly cookie; every admin operation goes through the same Dispatcher as
REST and gRPC, authenticated with that token, so the roles and ownership rules are the
admin API's own.
"""
