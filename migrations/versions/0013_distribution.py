"""keys ready for Citus: a distributed table's primary key holds its tenant column, tenant links go over (key, tenant); dispatch.extracted_entities.session_id

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.ddl import migration_ops
from tdbctl.schema import types

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# docs/schema.md, Distribution on Citus. The keys follow tdbctl/schema/distribution.py as of this
# revision; tdbctl migrate then distributes the tables on a Citus coordinator.
BACKFILL = ("UPDATE dispatch.extracted_entities SET session_id = (SELECT t.session_id FROM dispatch.call_transcripts t "
            "WHERE t.id = dispatch.extracted_entities.transcript_id)")

OBJECTS = {
    'dispatch.entity_session': {'postgresql': """\
CREATE OR REPLACE FUNCTION dispatch.entity_session()
RETURNS TRIGGER AS $$
BEGIN
    IF NEW.session_id IS NULL THEN
        SELECT t.session_id INTO NEW.session_id FROM dispatch.call_transcripts t WHERE t.id = NEW.transcript_id;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql"""},
    'dispatch.extracted_entities_session': {
        'postgresql': """\
CREATE TRIGGER extracted_entities_session
    BEFORE INSERT ON dispatch.extracted_entities
    FOR EACH ROW
    EXECUTE FUNCTION dispatch.entity_session()""",
        'sqlite': """\
CREATE TRIGGER dispatch.extracted_entities_session
    AFTER INSERT ON extracted_entities
    FOR EACH ROW WHEN NEW.session_id IS NULL
BEGIN
    UPDATE extracted_entities SET session_id = (SELECT session_id FROM call_transcripts WHERE id = NEW.transcript_id)
    WHERE id = NEW.id;
END""",
    },
}
DROP = {
    'dispatch.extracted_entities_session': {
        'postgresql': 'DROP TRIGGER IF EXISTS extracted_entities_session ON dispatch.extracted_entities',
        'sqlite': 'DROP TRIGGER IF EXISTS dispatch.extracted_entities_session'},
    'dispatch.entity_session': {'postgresql': 'DROP FUNCTION IF EXISTS dispatch.entity_session CASCADE'},
}


def upgrade() -> None:
    # NOT NULL on PostgreSQL once in the primary key (below); an insert trigger fills it.
    op.add_column('extracted_entities', sa.Column('session_id', types.UUID, nullable=True,
                  comment="The transcript's call session: the tenant these rows are sharded by on Citus"),
                  schema='dispatch')
    op.execute(BACKFILL)
    migration_ops.run_for_dialect(OBJECTS['dispatch.entity_session'])
    migration_ops.run_for_dialect(OBJECTS['dispatch.extracted_entities_session'])
    if migration_ops.is_postgresql():
        if op.get_context().as_sql:
            op.execute("-- 0013 reads the catalogs to widen the keys of the tables Citus distributes: "
                       "run it with tdbctl migrate")
            return
        from tdbctl.ddl.distribution import widen_keys
        from tdbctl.migrate import scope
        from tdbctl.schema import metadata

        widen_keys(op.get_bind(), metadata, scope.domains_in_scope())


def downgrade() -> None:
    if migration_ops.is_postgresql():
        if op.get_context().as_sql:
            op.execute("-- 0013 down reads the catalogs: run it with tdbctl migrate down")
        else:
            from tdbctl.ddl.distribution import narrow_keys
            from tdbctl.migrate import scope
            from tdbctl.schema import metadata

            narrow_keys(op.get_bind(), metadata, scope.domains_in_scope())
    for name in DROP:
        migration_ops.run_for_dialect(DROP[name])
    op.drop_column('extracted_entities', 'session_id', schema='dispatch')
