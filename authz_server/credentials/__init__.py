"""Stages 2 and 3, credentials and their authenticators: finding the API key or bearer
token a request carries, and turning it into an Identity (API key by hash; bearer tokens
by the first token authenticator that recognises them: JWT, then opaque introspection;
both through the shared token-client lookup)."""
