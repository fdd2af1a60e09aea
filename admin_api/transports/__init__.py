"""The wire faces of admin_api, each thin over the Dispatcher or a domain object: gRPC
(`grpc`, with the PolicySync stream), REST/JSON (`rest`), the resident key manager's
OAuth2 endpoints (`oauth2`) and the backend-JWT JWKS (`backend_jwks`)."""
