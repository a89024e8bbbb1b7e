"""The metadata and its objects build on both dialects (migrations are tested elsewhere)."""

import sqlalchemy as sa

from tdbctl.engine import create_engine
from tdbctl.schema import ALL_SCHEMAS, metadata, objects_of


def build_schema(engine):
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            for schema in ALL_SCHEMAS:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        metadata.create_all(conn)
        for obj in objects_of(metadata):
            if obj.supported_on(dialect) and not obj.requires_extension:
                conn.exec_driver_sql(obj.create_sql(dialect))


def test_metadata_and_objects_build(db_url):
    engine = create_engine(db_url)
    build_schema(engine)
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        assert table.name in inspector.get_table_names(schema=table.schema), table.fullname
    for obj in objects_of(metadata):
        if obj.kind == "view" and obj.supported_on(engine.dialect.name):
            assert obj.name in inspector.get_view_names(schema=obj.schema), obj.qualified_name
    engine.dispose()
