"""What replicas receive of each entity, one module per kind that has a record of its own
(organizations, APIs, applications and subscriptions are sent as their admin views), and
`entities`, the one table of the kinds that are synced (used by the outbox and the
snapshot). API keys travel as hashes only; key-manager secrets and private keys in clear,
which the outbox seals before they reach the change log."""
