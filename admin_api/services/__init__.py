"""The service layer: one module per entity. Each public function takes the Store, a
protobuf request and the Caller, returns a protobuf message and raises admin_api.errors.
Neither gRPC nor HTTP is imported here."""
