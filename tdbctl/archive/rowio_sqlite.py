"""SQLite: rows are read with Core and encoded in Python; deleted once the files are verified.

The batch transaction holds the write lock of every file it touches from its start
(Dialect.reserve_for_write), so no other writer can change a row between its read and its
delete: the same guarantee PostgreSQL's row locks give.
"""

from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from tdbctl.archive.codec import RAW_KINDS, bind_values, kind_of, line_encoder, parse_line, row_decoder, select_columns
from tdbctl.archive.rowio import RowIO
from tdbctl.errors import TdbError
from tdbctl.ops.cascade import CascadeTree, Link

CHUNK = 500


class SqliteRowIO(RowIO):
    dialect = "sqlite"

    def __init__(self):
        self._staged: dict[str, list[dict]] = {}

    def take_rows(self, conn, table: sa.Table, condition, sink) -> int:
        encode = line_encoder(table, self.dialect)
        count = 0
        for row in conn.execute(sa.select(*select_columns(table.columns, self.dialect)).where(condition)):
            sink.write(encode(row))
            count += 1
        return count

    def take_links(self, conn, link: Link, condition, sink) -> int:
        columns = [*link.child.primary_key.columns, *link.columns]
        partial = sa.Table(link.child.name, sa.MetaData(), *(sa.Column(c.name, c.type) for c in columns))
        encode = line_encoder(partial, self.dialect)
        count = 0
        for row in conn.execute(sa.select(*select_columns(columns, self.dialect)).where(condition)):
            sink.write(encode(row))
            count += 1
        return count

    def finish_delete(self, conn, tree: CascadeTree, where, counts: dict[str, int]) -> None:
        for table in tree.delete_order():
            deleted = conn.execute(sa.delete(table).where(where(table))).rowcount
            if deleted != counts.get(table.fullname, 0):
                raise TdbError(f"{table.fullname}: {deleted} rows to delete but {counts.get(table.fullname, 0)} "
                               "archived; the batch was rolled back")

    # -- restore ---------------------------------------------------------------------------------

    def load_lines(self, conn, table: sa.Table, lines: Iterable[bytes]) -> None:
        decode = row_decoder(table, self.dialect)
        buffered = b"".join(lines)
        self._staged[table.fullname] = [decode(parse_line(line)) for line in buffered.splitlines() if line]

    def _keys(self, table: sa.Table) -> list[tuple]:
        names = [c.name for c in table.primary_key.columns]
        return [tuple(row[n] for n in names) for row in self._staged[table.fullname]]

    def staged_keys(self, conn, table: sa.Table) -> list:
        return [key[0] for key in self._keys(table)]

    def insert_staged(self, conn, table: sa.Table) -> int:
        rows = self._staged[table.fullname]
        statement = self.insert_ignoring(table).values(bind_values(table, self.dialect))
        inserted = 0
        for start in range(0, len(rows), CHUNK):
            params = [{f"p_{name}": value for name, value in row.items()} for row in rows[start:start + CHUNK]]
            inserted += conn.execute(statement, params).rowcount
        return inserted

    def missing_staged(self, conn, table: sa.Table) -> int:
        columns = list(table.primary_key.columns)
        keys = self._keys(table)
        present = 0
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            target = columns[0] if len(columns) == 1 else sa.tuple_(*columns)
            values = [k[0] for k in chunk] if len(columns) == 1 else chunk
            present += conn.execute(sa.select(sa.func.count()).select_from(table).where(target.in_(values))).scalar()
        return len(keys) - present

    def relink_staged(self, conn, link: Link) -> int:
        child = link.child
        keys = list(child.primary_key.columns)
        def typed(column):
            return sa.Text() if kind_of(column, self.dialect) in RAW_KINDS else column.type

        where = sa.and_(*(c == sa.bindparam(f"k_{c.name}", type_=typed(c)) for c in keys),
                        *(c.is_(None) for c in link.columns))
        statement = sa.update(child).where(where).values(
            {c.name: sa.bindparam(f"v_{c.name}", type_=typed(c)) for c in link.columns})
        params = [{**{f"k_{c.name}": row[c.name] for c in keys}, **{f"v_{c.name}": row[c.name] for c in link.columns}}
                  for row in self._staged[child.fullname]]
        updated = 0
        for start in range(0, len(params), CHUNK):
            updated += conn.execute(statement, params[start:start + CHUNK]).rowcount
        return updated

    def insert_ignoring(self, table: sa.Table):
        return sqlite.insert(table).on_conflict_do_nothing()
