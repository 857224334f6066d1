"""The assurance team's registry: suppliers, rounds, submissions, waivers, decisions and the audit log.

SQLAlchemy 2 over SQLite (default) or PostgreSQL; the schema is owned by the Alembic migrations
in ``migrations/`` and brought up to date whenever a registry is opened.
"""
