"""Portable column types: the seed's PostgreSQL type, and what stands in for it on SQLite.

Each name is the seed's type; on SQLite JSONB becomes JSON, arrays JSON, INET text and
vectors JSON, as docs/schema.md records.
"""

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

JSONB = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TEXT_ARRAY = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")
INET = sa.Text().with_variant(postgresql.INET(), "postgresql")
BYTEA = sa.LargeBinary()
UUID = sa.Uuid()
TIMESTAMPTZ = sa.DateTime(timezone=True)
TIMESTAMP = sa.DateTime(timezone=False)
EMBEDDING_DIMENSIONS = 1536


def vector(dimensions: int = EMBEDDING_DIMENSIONS) -> sa.types.TypeEngine:
    return sa.JSON().with_variant(Vector(dimensions), "postgresql")


class new_uuid(FunctionElement):
    """Server-side UUID default: gen_random_uuid() (core since PostgreSQL 13, no uuid-ossp)."""

    type = sa.Uuid()
    inherit_cache = True
    name = "new_uuid"


@compiles(new_uuid, "postgresql")
def _new_uuid_postgresql(element, compiler, **kw):
    return "gen_random_uuid()"


@compiles(new_uuid)
def _new_uuid_sqlite(element, compiler, **kw):
    # SQLAlchemy's Uuid stores 32 lowercase hex digits on SQLite; this yields the same form.
    return "lower(hex(randomblob(16)))"


def uuid_pk() -> sa.Column:
    return sa.Column("id", UUID, primary_key=True, server_default=new_uuid())


def now() -> sa.sql.ClauseElement:
    """NOW() on PostgreSQL, CURRENT_TIMESTAMP on SQLite."""
    return sa.func.now()
