"""The one SQLAlchemy MetaData every tdbctl command runs against.

Each domain is a PostgreSQL schema (an attached database on SQLite) declared in its own module;
importing this package registers them all on ``metadata``.
"""

from tdbctl.schema.base import metadata
from tdbctl.schemas import ALL_SCHEMAS, DOMAINS, TOOL_SCHEMA
from tdbctl.schema.objects import SchemaObject, objects_of
from tdbctl.schema.partitioning import Partitioning, partitioning_of
from tdbctl.schema.policies import RetentionPolicy, policies_of

# Importing each domain module registers its tables and objects on ``metadata``.
from tdbctl.schema import bookkeeping, dispatch, voice, academy, chattrain  # noqa: E402,F401

__all__ = [
    "ALL_SCHEMAS", "DOMAINS", "TOOL_SCHEMA", "Partitioning", "RetentionPolicy", "SchemaObject", "metadata", "objects_of", "partitioning_of", "policies_of",
]
