import sqlalchemy as sa

from tdbctl.schemas import DOMAINS, TOOL_SCHEMA  # noqa: F401  (re-exported: the names live there)

# Constraint names follow PostgreSQL's own defaults, so that a name the seeds do not give is
# the one a DBA would expect. CHECK constraints are always named explicitly: the seed's name
# (chk_difficulty) where it gives one, else PostgreSQL's default (user_feedback_rating_check).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class OnTable:
    """A declaration about one table beside it (partitioning, distribution), by its qualified name."""

    table: str

    @property
    def schema(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.table.split(".", 1)[1]


def postgresql_only(index: sa.Index) -> sa.Index:
    """Mark an index (GIN, trigram, ivfflat, expression) as created on PostgreSQL only."""
    return index.ddl_if(dialect="postgresql")
