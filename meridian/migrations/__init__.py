"""Alembic environment and versions for Meridian's database (run via Store.migrate())."""
