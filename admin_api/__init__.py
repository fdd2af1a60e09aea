"""admin_api: owns Portcullis's state, serves it over gRPC and REST, streams it to authz_server."""
