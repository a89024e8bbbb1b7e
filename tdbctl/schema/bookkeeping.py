"""The ``tdbctl`` schema: the tool's own bookkeeping.

The migration ledger keeps ChatTrain's schema_migrations idea (version, applied_at, checksum)
next to Alembic's version table: what was applied, when, by whom, and the checksum of the script
as it was, so an edited migration is caught before it does harm (Flyway's validate).
"""

import sqlalchemy as sa

from tdbctl.schema.base import TOOL_SCHEMA, metadata
from tdbctl.schema.types import JSONB, TIMESTAMPTZ, now

migration_ledger = sa.Table(
    "migration_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.String(64), nullable=False, unique=True),
    sa.Column("script", sa.String(255), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("applied_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Column("applied_by", sa.String(255)),
    sa.Column("execution_ms", sa.Integer),
    sa.Column("how", sa.String(16), nullable=False, server_default="applied",
              comment="applied: run by tdbctl migrate; baselined: recorded by tdbctl migrate baseline over a "
                      "schema built otherwise."),
    schema=TOOL_SCHEMA,
    comment="Applied migrations with the checksum of each script as applied.",
)

# Every data-changing run (cleanup, archive, seed, reindex): who, where, with what options, what it
# touched, how it ended. A run killed mid-way stays 'running' until the next run of the same
# command, holding the lock, marks it 'killed'.
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Column("finished_at", TIMESTAMPTZ),
    sa.Column("user_host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("tdbctl_version", sa.String(32)),
    sa.Column("options", JSONB),
    sa.Column("rows", JSONB, comment="Rows affected per table."),
    sa.Column("message", sa.Text),
    sa.CheckConstraint(
        "status IN ('running', 'succeeded', 'failed', 'stopped', 'dry_run', 'killed')", name="runs_status_check"
    ),
    sa.Index("idx_runs_command_started", "command", "started_at"),
    schema=TOOL_SCHEMA,
    comment="History of tdbctl runs that change data.",
)

# Claims: which tdbctl run may change the database now (tdbctl/ops/claims.py). A row per run that
# holds one, in short transactions of their own, so that a claim works through a transaction
# pooler and is never lost silently with a connection: a run that no longer finds its row has lost
# its claim, and every transaction that changes data under it first checks (and locks) that row.
claims = sa.Table(
    "claims",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token", sa.String(36), nullable=False, unique=True),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False, comment="schema, data or reindex: what it excludes."),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("process_start", sa.BigInteger, comment="The process's start time (Linux clock ticks): tells a reused pid."),
    sa.Column("acquired_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Column("lease_until", sa.Float(53), comment="Server clock, seconds since the epoch; NULL: while its process lives."),
    schema=TOOL_SCHEMA,
    comment="Runs holding a claim on this database (cleanup, archive, migrate, seed, reindex).",
)

# Archive batches: the catalog that makes archiving crash-safe. A batch is 'writing' until its file
# is written and read back ('verified'), then its rows are deleted in the same transaction that
# marks it 'archived'. A later run finds batches left in between and finishes or discards them;
# 'leftover' is a discarded batch whose files could not be removed (`tdbctl archive discard`).
archive_batches = sa.Table(
    "archive_batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey(f"{TOOL_SCHEMA}.runs.id", ondelete="SET NULL")),
    sa.Column("policy", sa.String(100), nullable=False),
    sa.Column("source_table", sa.String(255), nullable=False),
    sa.Column("destination", sa.Text, nullable=False, comment="Archive table or file path."),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("row_count", sa.BigInteger),
    sa.Column("child_rows", JSONB, comment="Rows per child table archived with the batch."),
    sa.Column("key_min", sa.Text),
    sa.Column("key_max", sa.Text),
    sa.Column("time_min", TIMESTAMPTZ),
    sa.Column("time_max", TIMESTAMPTZ),
    sa.Column("sha256", sa.String(64)),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("manifest", JSONB),
    sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Column("completed_at", TIMESTAMPTZ),
    sa.CheckConstraint(
        "status IN ('writing', 'verified', 'archived', 'discarded', 'restored', 'leftover')",
        name="archive_batches_status_check",
    ),
    sa.Index("idx_archive_batches_status", "status"),
    sa.Index("idx_archive_batches_policy_created", "policy", "created_at"),
    schema=TOOL_SCHEMA,
    comment="Catalog of archive batches and their verification state.",
)

# Tables being converted to partitioned ones (tdbctl/partitions/convert.py): after the swap, the
# old table's rows move over in batches, each committed with the running count and checksum here,
# so that a killed run continues and the old table goes only when every row arrived unchanged.
partition_conversions = sa.Table(
    "partition_conversions",
    metadata,
    sa.Column("table_name", sa.String(255), primary_key=True, comment="Schema-qualified partitioned table."),
    sa.Column("old_table", sa.String(255), nullable=False, comment="The plain table its rows come from."),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows_total", sa.BigInteger),
    sa.Column("checksum_total", sa.Numeric(40, 0)),
    sa.Column("rows_moved", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("checksum_moved", sa.Numeric(40, 0), nullable=False, server_default="0"),
    sa.Column("started_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Column("finished_at", TIMESTAMPTZ),
    sa.CheckConstraint("status IN ('swapped', 'moving', 'done', 'mismatch')", name="partition_conversions_status_check"),
    schema=TOOL_SCHEMA,
    comment="Plain tables converted to partitioned ones: progress and verification of the row move.",
)

# What changed the old table of a conversion by other hands than the move (a parent's ON DELETE
# CASCADE or SET NULL): a row per changed row, added up against the totals when the move ends.
partition_conversion_changes = sa.Table(
    "partition_conversion_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("table_name", sa.String(255), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("checksum", sa.Numeric(40, 0), nullable=False),
    schema=TOOL_SCHEMA,
    comment="Changes to a converting table's old rows made meanwhile by foreign key actions.",
)

# The domains this database runs (tdbctl/domains.py): a platform may install only some of them.
domains = sa.Table(
    "domains",
    metadata,
    sa.Column("domain", sa.String(32), primary_key=True),
    sa.Column("installed_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.Column("installed_by", sa.String(255)),
    sa.Column("revision", sa.String(64), comment="The revision the database was at when the domain was installed."),
    schema=TOOL_SCHEMA,
    comment="The domains installed in this database; migrate and every command look after these only.",
)

# tdbctl import (tdbctl/importing/): how far each source table's copy got, written in each
# batch's own transaction, so a killed import continues after its last committed batch.
imports = sa.Table(
    "imports",
    metadata,
    sa.Column("source", sa.String(500), primary_key=True, comment="The source database, its password left out."),
    sa.Column("source_table", sa.String(255), primary_key=True),
    sa.Column("target_table", sa.String(255), nullable=False),
    sa.Column("last_key", JSONB, comment="The source key of the last row copied (keys are copied in order)."),
    sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_written", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_skipped", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("skipped", JSONB, comment="Why rows were skipped: reason -> rows, and the first key of each."),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=now()),
    sa.CheckConstraint("status IN ('copying', 'copied', 'verified', 'mismatch')", name="imports_status_check"),
    schema=TOOL_SCHEMA,
    comment="Progress of tdbctl import, per source table.",
)
