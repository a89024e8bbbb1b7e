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


def other_schemas(names, ours=ALL_SCHEMAS) -> list[str]:
    """Of a database's schema names, the application's own: not tdbctl's (``ours``), not the
    server's catalogs."""
    return sorted(n for n in names if n not in ours and n != "information_schema" and not n.startswith("pg_"))
"""Alembic's record of the applied revision, in TOOL_SCHEMA."""
