"""The gRPC server: every admin service through the Dispatcher, PolicySync, health and reflection."""
