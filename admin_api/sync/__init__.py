"""Policy sync: the transactional outbox and the PolicySync.Watch stream built on it."""
