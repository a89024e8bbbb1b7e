"""seed indexes: the redundant ones dropped, the forgotten foreign keys indexed

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# (schema, table, index, columns): each has the same key as an index that stays (docs/schema.md).
REDUNDANT = [
    ('academy', 'scenarios', 'idx_scenarios_rating', [sa.literal_column('rating_avg DESC')]),
    ('academy', 'user_progress', 'idx_user_progress_user', ['user_id']),
    ('academy', 'user_progress', 'idx_user_progress_scenario', ['scenario_id']),
    ('academy', 'conversation_logs', 'idx_conversation_logs_progress', ['user_progress_id']),
    ('academy', 'conversation_logs', 'idx_conversation_logs_scene', ['scene_id']),
    ('voice', 'conversations', 'idx_conversations_session_id', ['session_id']),
    ('voice', 'appointments', 'idx_appointments_confirmation_code', ['confirmation_code']),
    ('voice', 'conversations_archive', 'conversations_archive_session_id_idx', ['session_id']),
]

# Foreign keys no index led with: deleting a parent row scanned the whole child table.
FOREIGN_KEYS = [
    ('chattrain', 'feedback', 'idx_feedback_message_id', ['message_id']),
    ('voice', 'error_logs', 'idx_errors_conversation_id', ['conversation_id']),
    ('voice', 'system_metrics', 'idx_metrics_conversation_id', ['conversation_id']),
    ('voice', 'extracted_slots', 'idx_slots_turn_id', ['turn_id']),
]


def upgrade() -> None:
    for schema, table, name, _columns in REDUNDANT:
        op.drop_index(name, table_name=table, schema=schema)
    for schema, table, name, columns in FOREIGN_KEYS:
        op.create_index(name, table, columns, unique=False, schema=schema)


def downgrade() -> None:
    for schema, table, name, _columns in FOREIGN_KEYS:
        op.drop_index(name, table_name=table, schema=schema)
    for schema, table, name, columns in REDUNDANT:
        op.create_index(name, table, columns, unique=False, schema=schema)
