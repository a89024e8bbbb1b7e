"""Citus: PostgreSQL sharded over nodes, seen through its coordinator.

The SQL is PostgreSQL's (``name`` stays ``postgresql``); what differs is where rows live. A row's
physical locator (ctid) names a place in one shard, or in one copy of a reference table, so no
batch here is ever addressed by it: batches go by primary key, which the coordinator routes to
the shards that hold them. The tables are placed as tdbctl/schema/distribution.py declares.
"""

from __future__ import annotations

from contextlib import contextmanager

from tdbctl.dialects.postgresql import PostgresDialect


# On each node, in one query: every shard's rows as the statistics count them (no scan). A
# shard is its table's name and _<shard id>.
NODE_ROWS = ("SELECT coalesce(json_agg(json_build_array(substring(relname from '_([0-9]+)$'), n_live_tup)), '[]') "
             "FROM pg_stat_user_tables WHERE relname ~ '_[0-9]+$'")


def node_name(host: str, port: int) -> str:
    return f"{host}:{port}"


def shard_figures(conn, tables: list[str] | None = None) -> list[tuple]:
    """(table, shard id, node, rows, bytes, Citus table type) of every shard placement of the
    Citus tables (or of ``tables``): the coordinator's own tables are empty shells."""
    import json

    placements = conn.exec_driver_sql(
        "SELECT table_name::text, shardid, nodename, nodeport, shard_size, citus_table_type FROM citus_shards "
        + ("WHERE table_name = ANY(%(t)s::regclass[]) " if tables is not None else "") + "ORDER BY 1, 2",
        {"t": tables} if tables is not None else {}).all()
    rows: dict[tuple[str, int], int] = {}
    for host, port, ok, result in conn.exec_driver_sql(
            "SELECT n.nodename, n.nodeport, r.success, r.result FROM run_command_on_all_nodes(%(q)s) r "
            "JOIN pg_dist_node n USING (nodeid)", {"q": NODE_ROWS}).all():
        if ok:
            rows.update({(node_name(host, port), int(shard)): int(count or 0) for shard, count in json.loads(result)})
    return [(table, shard, node_name(host, port), rows.get((node_name(host, port), shard), 0), int(size or 0), kind)
            for table, shard, host, port, size, kind in placements]


class CitusDialect(PostgresDialect):
    prefix = "Citus"
    clustered = True
    PARTS = {**PostgresDialect.PARTS, "stats": "tdbctl.stats.citus:CitusCollector",
             "backup": "tdbctl.backup.postgresql:PostgresBackup",
             "reindex": "tdbctl.reindex.postgresql:CitusReindex"}

    def refined(self, conn):
        return self

    def with_shard_figures(self, conn, partitions):
        # A partition's rows and bytes are its shards': the coordinator's table is an empty shell.
        from dataclasses import replace

        if not partitions:
            return partitions
        rows: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for table, _shard, _node, count, size, _kind in shard_figures(conn, [p.qualified for p in partitions]):
            rows[table] = rows.get(table, 0) + count
            sizes[table] = sizes.get(table, 0) + size
        return [replace(p, rows=rows.get(f"{p.schema}.{p.name}", p.rows), bytes=sizes.get(f"{p.schema}.{p.name}", p.bytes))
                for p in partitions]

    def unkept_links(self, metadata):
        from tdbctl.schema.distribution import distribution_of

        names = {fk.name for t in metadata.tables.values() for fk in t.foreign_key_constraints}
        return {c for d in distribution_of(metadata).values() for c in d.loose if c in names}

    def misplaced(self, conn, metadata, schemas):
        from tdbctl.ddl.distribution import misplaced

        return misplaced(conn, metadata, schemas)

    def cluster(self, conn, metadata, schemas):
        from collections import Counter

        from tdbctl.ddl.distribution import misplaced, placements

        nodes = [{"node": f"{host}:{port}", "role": "coordinator" if group == 0 else "worker", "active": active,
                  "holds_shards": shards}
                 for group, host, port, active, shards in conn.exec_driver_sql(
                     "SELECT groupid, nodename, nodeport, isactive, shouldhaveshards FROM pg_dist_node "
                     "ORDER BY groupid, nodeid").all()]
        placed = Counter(p.kind for p in placements(conn, schemas).values())
        return {"nodes": nodes, "placed": dict(placed),
                "misplaced": [{"table": t, "what": w} for t, w in misplaced(conn, metadata, schemas)]}

    def distribute(self, conn, metadata, schemas):
        from tdbctl.ddl.distribution import distribute

        return distribute(conn, metadata, schemas)

    def begin_load(self, conn, tables) -> None:
        # A load that writes a reference table (academy's users) beside distributed ones must
        # keep to one connection a node, from its start, or Citus refuses the write; the others
        # write every shard at once.
        from tdbctl.schema import metadata
        from tdbctl.schema.distribution import distribution_of

        plan = distribution_of(metadata)
        if any(plan.get(t) is not None and plan[t].kind == "reference" for t in tables):
            conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")

    @contextmanager
    def bulk_load(self, conn, tables):
        # Dropping indexes or triggers around a load is DDL on every shard, which Citus refuses in
        # a transaction that has read in parallel: the shards keep their indexes. A superuser's
        # load goes as pg_restore --disable-triggers' does, on the workers too: the SET LOCAL
        # travels to them with the transaction (citus.propagate_set_commands), and ends with it.
        if conn.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar():
            conn.exec_driver_sql("SET LOCAL citus.propagate_set_commands TO 'local'")
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        yield

    # --- Batched deletes: by key, never by ctid or page ranges --------------------------------

    def page_walk(self, conn, table):
        return None

    def row_locator(self, table):
        key = list(table.primary_key.columns)
        if len(key) == 1:
            return key[0]
        if not key:
            walk = self._distribution_column(table)
            if walk is not None:
                return table.c[walk]
        from tdbctl.errors import TdbError

        raise TdbError(f"{table.fullname}: on a Citus cluster rows are deleted in batches by a one-column "
                       "primary key or the distribution column, and this table has neither")

    def locator_keyset(self, table):
        from tdbctl.dialects.base import LocatorKeyset

        # A table without a key (voice.system_metrics) is walked by its distribution column: a
        # batch takes every row at the values it selected that the policy still takes.
        column = self.row_locator(table)
        return LocatorKeyset(column=column, after=lambda last: column > last, order_by=(column,), sort_key=None,
                             unique=False)

    @staticmethod
    def _distribution_column(table):
        from tdbctl.schema import metadata
        from tdbctl.schema.distribution import distribution_of

        declared = distribution_of(metadata).get(table.info.get("partition_of", table.fullname))
        return declared.column if declared is not None and declared.kind == "distributed" else None

    def locator_in(self, table, locators):
        return self.row_locator(table).in_(list(locators))

    def lock_batch(self, select):
        # FOR UPDATE cannot span shards: the batch is read unlocked, and the DELETE, which does
        # lock, takes again only the rows that still match (a row changed meanwhile stays).
        return select

    def lock_rows(self, select, of=None):
        return select  # reserve_for_write locked the tables instead

    def reserve_for_write(self, conn, tables) -> None:
        # No row lock spans shards: the tables a batch reads and then deletes from are locked
        # against writers for the batch (short), so that no row joins its rows meanwhile and
        # goes by ON DELETE CASCADE without being written out. Citus takes the lock on every shard.
        names = ", ".join(f'"{t.schema}"."{t.name}"' for t in tables)
        conn.exec_driver_sql(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")

    def delete_batch_in_one_statement(self, conn, table, batch, key_names, recheck):
        return None
