"""admin_api's storage: SQLAlchemy models, the engine and the Alembic migrations that build them."""
