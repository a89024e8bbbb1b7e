"""PostgreSQL: the server writes each line (COPY ... TO STDOUT) and reads it back (COPY FROM).

Taking a table's rows is ``COPY (WITH taken AS (DELETE ... RETURNING <line>) ...) TO STDOUT``: the
rows are read and deleted by one statement, locked from then until the transaction ends, so
nothing can change between what the file holds and what is deleted; the delete takes effect only at COMMIT, which
comes after the file is on disk and read back. Lines travel as CSV whose quote and delimiter are
control bytes JSON never contains raw, so COPY passes each JSON line through unchanged.

A batch runs in REPEATABLE READ. Children are deleted before their parents, so the foreign keys'
own ON DELETE CASCADE actions, which run when a parent goes, find nothing left to delete, unless a
row joined the batch after its snapshot (a child inserted or re-parented under one of its rows):
PostgreSQL's RI actions check what they touch against the transaction's snapshot and fail with a
serialization failure (40001) rather than delete a row the snapshot did not see, and so does a
DELETE meeting a row changed since. The batch is then rolled back and run again: a row is deleted
only by the statement that wrote it to the file. That is what spares locking every parent row of
the tree before reading its children (FOR UPDATE on the transcripts of a batch cost a pass over
them and a WAL record per row).
"""

from __future__ import annotations

import json
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tdbctl.archive.codec import kind_of
from tdbctl.archive.rowio import RowIO
from tdbctl.dialects.postgresql import sql_literal
from tdbctl.errors import TdbError
from tdbctl.ops.cascade import CascadeTree, Link

RAW_LINES = "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
STAGE = "tdbctl_archive_lines"
MAX_ARGS = 90  # PostgreSQL functions take at most 100 arguments
SCALAR_KINDS = ("text", "timestamptz", "timestamp", "date", "time", "bytes", "decimal", "float", "bool")
"""Kinds whose JSON_SCALAR is to_json's (arrays and the rest keep to_json)."""
CHUNK_LINES = 1000
"""Lines the server joins into one COPY message: one message per row cost the client ~6 µs a row,
a third of what the server spends taking it."""


class PostgresRowIO(RowIO):
    dialect = "postgresql"
    # Each batch reaches most pages of the foreign keys' indexes (random UUIDs) whatever its
    # size: 10000 roots (50000 rows with their children) take 20% less time per row than 5000
    # on a million rows, and a batch still commits within about a second.
    batch_size = 10000

    def __init__(self):
        self._json_scalar = False
        self._pg = postgresql.dialect()
        self._quote = self._pg.identifier_preparer

    # -- helpers ---------------------------------------------------------------------------------

    def _sql(self, statement) -> str:
        return str(statement.compile(dialect=self._pg, compile_kwargs={"literal_binds": True}))

    def _table(self, table: sa.Table) -> str:
        return self._quote.format_table(table)

    def line_expression(self, table: sa.Table, columns=None) -> str:
        """SQL building one row's JSON line; NULL columns drop out.

        This expression is most of the server's time per row beyond the delete itself, hence its
        shape (each measured against ``to_json`` of every column in a ``concat_ws``, same bytes,
        a third less time): one ``concat`` of literal key fragments and values, the comma inside
        a nullable column's fragment (NULL makes the whole fragment NULL and concat skips it);
        UUIDs and integers by their text cast (JSON-safe, no per-row type lookup); other scalars by
        JSON_SCALAR (PostgreSQL 16+), which is to_json with the value's type looked up once per
        statement, not once per row."""
        columns = list(columns or table.columns)
        if columns[0].nullable:  # no NOT NULL column to put first: commas between fragments
            return self._line_separated(table, columns)
        parts = ["'{'"]
        for index, column in enumerate(columns):
            key = sql_literal(("," if index else "") + json.dumps(column.name) + ":")
            if column.nullable:
                parts.append(f"{key} || ({self._json_value(table, column)})::text")
            else:
                parts += [key, self._json_value(table, column)]
        parts.append("'}'")
        return _nested("concat", parts)

    def _json_value(self, table: sa.Table, column: sa.Column) -> str:
        ref = f"{self._table(table)}.{self._quote.quote(column.name)}"
        kind = kind_of(column, "postgresql")
        # jsonb's text is JSON; so is pgvector's ('[1,2.5,3]'), which makes a vector a JSON array.
        if kind in ("json", "vector", "int"):
            return f"{ref}::text"
        if kind == "uuid":
            return f"'\"' || {ref}::text || '\"'"
        if kind in SCALAR_KINDS and self._json_scalar:
            return f"JSON_SCALAR({ref})"
        return f"to_json({ref})"

    def _line_separated(self, table: sa.Table, columns) -> str:
        fragments = []
        for column in columns:
            fragments.append(f"{sql_literal(json.dumps(column.name) + ':')} || ({self._json_value(table, column)})::text")
        groups = [fragments[i:i + MAX_ARGS] for i in range(0, len(fragments), MAX_ARGS)]
        if len(groups) == 1:
            body = f"concat_ws(',', {', '.join(groups[0])})"
        else:
            body = "concat_ws(',', " + ", ".join(f"NULLIF(concat_ws(',', {', '.join(g)}), '')" for g in groups) + ")"
        return f"'{{' || {body} || '}}'"

    def _copy_out(self, conn, query: str, sink) -> int:
        cursor = conn.connection.driver_connection.cursor()
        try:
            with cursor.copy(f"COPY ({query}) TO STDOUT {RAW_LINES}") as copy:
                for data in copy:
                    sink.write(data)
            return cursor.rowcount
        finally:
            cursor.close()

    def _copy_chunks(self, conn, query: str, sink, *, before: str = "") -> int:
        """Write the ``line`` column of ``query`` (a DELETE ... RETURNING, run to completion as a
        CTE is) to ``sink``, CHUNK_LINES lines a message; returns the rows the server counted.

        Each message is ``<count>\\x02\\x01<lines, each ending in a newline>\\x01\\n``: the field holds
        newlines, so CSV always quotes it, with a quote byte JSON never contains raw (never doubled).
        ``before``: common table expressions ``query`` reads, each followed by a comma.
        """
        chunked = (f"WITH {before}taken AS ({query}) SELECT count(*), string_agg(line || E'\\n', '') FROM "
                   f"(SELECT line, (row_number() OVER ()) / {CHUNK_LINES} AS chunk FROM taken) numbered GROUP BY chunk")
        rows = 0
        cursor = conn.connection.driver_connection.cursor()
        try:
            with cursor.copy(f"COPY ({chunked}) TO STDOUT {RAW_LINES}") as copy:
                for data in copy:
                    view = memoryview(data)
                    split = bytes(view[:24]).find(b"\x02\x01")
                    if split < 1 or view[-2:] != b"\x01\n":
                        raise TdbError(f"unexpected COPY data from the server: {bytes(view[:40])!r}")
                    rows += int(bytes(view[:split]))
                    sink.write(view[split + 2:-2])
            return rows
        finally:
            cursor.close()

    # -- archive ---------------------------------------------------------------------------------

    keys_per_transaction = True

    def prepare(self, conn) -> None:
        self._json_scalar = int(conn.exec_driver_sql("SHOW server_version_num").scalar()) >= 160000

    def keys_chosen(self, conn, keys: sa.Table, tree: CascadeTree) -> None:
        # A temporary table has no statistics: without them the planner guesses its size.
        conn.exec_driver_sql(f"ANALYZE {self._quote.quote(keys.name)}")
        # A batch reaches a few thousand rows of tables that may hold millions: found through the
        # foreign keys' indexes its cost stays the same however big the tables grow, while a hash
        # join reads each child table whole, for every batch. Only when every link has an index.
        if all(_indexed(link) for link in (*tree.cascades, *tree.detached)):
            conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
            conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")

    def begin_batch(self, conn) -> None:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # to_json writes timestamptz in the session's zone: UTC makes every file read the same.
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")

    def retryable(self, exc: BaseException) -> bool:
        # psycopg's own error from a COPY, or SQLAlchemy's wrapping it from a statement.
        return "40001" in (getattr(exc, "sqlstate", None), getattr(getattr(exc, "orig", None), "sqlstate", None))

    def take_rows(self, conn, table: sa.Table, condition, sink) -> int:
        query = f"{self._sql(sa.delete(table).where(condition))} RETURNING {self.line_expression(table)} AS line"
        return self._copy_chunks(conn, query, sink)

    def copy_rows(self, conn, table: sa.Table, sink) -> int:
        # A plain SELECT streams: a row a message costs less here than the chunking's aggregate
        # (which pays off behind a DELETE ... RETURNING, materialized anyway).
        return self._copy_out(conn, f"SELECT {self.line_expression(table)} FROM {self._table(table)}", sink)

    def take_links(self, conn, link: Link, condition, sink) -> int:
        columns = [*link.child.primary_key.columns, *link.columns]
        select = sa.select(sa.literal_column(self.line_expression(link.child, columns)))
        query = self._sql(select.select_from(link.child).where(condition).with_for_update())
        return self._copy_out(conn, query, sink)

    # -- restore ---------------------------------------------------------------------------------

    def load_lines(self, conn, table: sa.Table, lines: Iterable[bytes]) -> None:
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (doc json) ON COMMIT DROP")
        conn.exec_driver_sql(f"TRUNCATE {STAGE}")
        cursor = conn.connection.driver_connection.cursor()
        try:
            with cursor.copy(f"COPY {STAGE} (doc) FROM STDIN {RAW_LINES}") as copy:
                for chunk in lines:
                    copy.write(chunk)
        finally:
            cursor.close()

    def _staged(self, table: sa.Table) -> str:
        return f"{STAGE} l, json_populate_record(NULL::{self._table(table)}, l.doc) r"

    def _value(self, column: sa.Column) -> str:
        name = self._quote.quote(column.name)
        if kind_of(column, "postgresql") == "json":
            # From the line itself: json_populate_record would read a JSON null as SQL NULL.
            return f"(l.doc -> {sql_literal(column.name)})::jsonb"
        return f"r.{name}"

    def _key_match(self, table: sa.Table, alias: str) -> str:
        return " AND ".join(f"{alias}.{self._quote.quote(c.name)} = r.{self._quote.quote(c.name)}"
                            for c in table.primary_key.columns)

    def staged_keys(self, conn, table: sa.Table) -> list:
        key = self._quote.quote(table.primary_key.columns.values()[0].name)
        return [row[0] for row in conn.exec_driver_sql(f"SELECT r.{key} FROM {self._staged(table)}")]

    def insert_staged(self, conn, table: sa.Table) -> int:
        names = ", ".join(self._quote.quote(c.name) for c in table.columns)
        values = ", ".join(self._value(c) for c in table.columns)
        result = conn.exec_driver_sql(
            f"INSERT INTO {self._table(table)} ({names}) SELECT {values} FROM {self._staged(table)} "
            "ON CONFLICT DO NOTHING"
        )
        return result.rowcount

    def missing_staged(self, conn, table: sa.Table) -> int:
        return conn.exec_driver_sql(
            f"SELECT count(*) FROM {self._staged(table)} WHERE NOT EXISTS "
            f"(SELECT 1 FROM {self._table(table)} x WHERE {self._key_match(table, 'x')})"
        ).scalar()

    def relink_staged(self, conn, link: Link) -> int:
        child = link.child
        sets = ", ".join(f"{self._quote.quote(c.name)} = r.{self._quote.quote(c.name)}" for c in link.columns)
        still_null = " AND ".join(f"x.{self._quote.quote(c.name)} IS NULL" for c in link.columns)
        result = conn.exec_driver_sql(
            f"UPDATE {self._table(child)} x SET {sets} FROM {self._staged(child)} "
            f"WHERE {self._key_match(child, 'x')} AND {still_null}"
        )
        return result.rowcount

    def insert_ignoring(self, table: sa.Table):
        return postgresql.insert(table).on_conflict_do_nothing()


def _nested(function: str, args: list[str]) -> str:
    """``function(args)`` within PostgreSQL's 100 arguments a call (concat of concats)."""
    while len(args) > MAX_ARGS:
        args = [f"{function}({', '.join(args[i:i + MAX_ARGS])})" for i in range(0, len(args), MAX_ARGS)]
    return f"{function}({', '.join(args)})"


def _indexed(link: Link) -> bool:
    """An index (or the primary key) of the child starts with the link's columns."""
    wanted = [c.name for c in link.columns]
    leading = [[c.name for c in index.columns][:len(wanted)] for index in link.child.indexes]
    leading.append([c.name for c in link.child.primary_key.columns][:len(wanted)])
    return wanted in leading


class CitusRowIO(PostgresRowIO):
    """On a Citus coordinator: RETURNING runs on the shards, which allow only immutable functions
    there, so the rows come back whole and the coordinator builds their lines; no row lock spans
    shards, so the batch's tables are locked instead (CitusDialect.reserve_for_write)."""

    def take_rows(self, conn, table: sa.Table, condition, sink) -> int:
        line = self.line_expression(table).replace(f"{self._table(table)}.", "gone.")
        return self._copy_chunks(conn, f"SELECT {line} AS line FROM gone", sink,
                                 before=f"gone AS ({self._sql(sa.delete(table).where(condition))} RETURNING *), ")

    def take_links(self, conn, link: Link, condition, sink) -> int:
        columns = [*link.child.primary_key.columns, *link.columns]
        select = sa.select(sa.literal_column(self.line_expression(link.child, columns)))
        return self._copy_out(conn, self._sql(select.select_from(link.child).where(condition)), sink)

    # A batch's staged lines sit in a temporary table, which Citus joins to no distributed one:
    # they are read in a materialized CTE first, which it ships to the shards as a result.
    def missing_staged(self, conn, table: sa.Table) -> int:
        key = ", ".join(self._quote.quote(c.name) for c in table.primary_key.columns)
        return conn.exec_driver_sql(
            f"WITH s AS MATERIALIZED (SELECT {', '.join(f'r.{self._quote.quote(c.name)}' for c in table.primary_key.columns)} "
            f"FROM {self._staged(table)}) SELECT count(*) FROM s WHERE ({key}) NOT IN "
            f"(SELECT {key} FROM {self._table(table)} WHERE ({key}) IN (SELECT * FROM s))"
        ).scalar()

    def relink_staged(self, conn, link: Link) -> int:
        child = link.child
        wanted = [*child.primary_key.columns, *link.columns]
        sets = ", ".join(f"{self._quote.quote(c.name)} = r.{self._quote.quote(c.name)}" for c in link.columns)
        still_null = " AND ".join(f"x.{self._quote.quote(c.name)} IS NULL" for c in link.columns)
        result = conn.exec_driver_sql(
            f"WITH r AS MATERIALIZED (SELECT {', '.join(f'r.{self._quote.quote(c.name)}' for c in wanted)} "
            f"FROM {self._staged(child)}) UPDATE {self._table(child)} x SET {sets} FROM r "
            f"WHERE {self._key_match(child, 'x')} AND {still_null}"
        )
        return result.rowcount
