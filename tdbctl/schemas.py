"""The PostgreSQL schemas tdbctl owns, by name: importable without SQLAlchemy.

tdbctl.schema declares the tables in them; backup and restore need only the names, and reach
pg_dump/pg_restore before SQLAlchemy has been imported.
"""

DOMAINS = ("dispatch", "voice", "academy", "chattrain")
TOOL_SCHEMA = "tdbctl"
ALL_SCHEMAS = (TOOL_SCHEMA, *DOMAINS)
EXTENSIONS = {"academy": ("pg_trgm", "vector"), "chattrain": ("vector",)}
"""The PostgreSQL extensions each domain's tables need (a vector column, a trigram index): a
deployment without those domains needs none of them."""
VERSION_TABLE = "alembic_version"
"""Alembic's record of the applied revision, in TOOL_SCHEMA."""
