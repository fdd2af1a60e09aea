"""What authz_server tells Envoy and Envoy's routes match on: one definition for both."""

ENVIRONMENT_HEADER = "x-portcullis-environment"   # set by authz_server on every allow
PRODUCTION = "production"
SANDBOX = "sandbox"
