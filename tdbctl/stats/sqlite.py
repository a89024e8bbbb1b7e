"""SQLite figures: the subset that makes sense for a set of attached files.

No server, sessions, locks, replicas or statistics counters: file sizes and page counts per
domain file, exact row counts (SQLite keeps no estimate worth the name), sizes per table and
index from the dbstat virtual table, duplicate indexes, and integrity_check on request.
"""

from __future__ import annotations

import os


class SqliteCollector:
    dialect = "sqlite"

    def __init__(self, conn, schemas, thresholds):
        self.conn = conn
        self.thresholds = thresholds
        attached = {name: path for _seq, name, path in conn.exec_driver_sql("PRAGMA database_list").all()}
        self.schemas = [s for s in schemas if s in attached]
        self.paths = attached
        self._sizes = None
        self.notes: list[str] = []

    @staticmethod
    def connect(engine):
        return engine.connect()

    def _all(self, sql: str, params=()):
        return self.conn.exec_driver_sql(sql, params).all()

    def _objects(self, schema: str, kind: str) -> list[tuple]:
        return self._all(
            f"SELECT name, tbl_name, sql FROM \"{schema}\".sqlite_master WHERE type = ? "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name", (kind,))

    def _btree_sizes(self, schema: str) -> dict[str, int] | None:
        """Bytes per table or index, from dbstat's aggregate mode; None where SQLite lacks dbstat."""
        if self._sizes is None:
            self._sizes = {}
        if schema not in self._sizes:
            try:
                self._sizes[schema] = dict(self._all("SELECT name, pgsize FROM dbstat(?, 1)", (schema,)))
            except Exception:  # built without SQLITE_ENABLE_DBSTAT_VTAB
                self._sizes[schema] = None
        return self._sizes[schema]

    def health(self) -> dict:
        return {
            "server_version": self.conn.exec_driver_sql("SELECT sqlite_version()").scalar(),
            "uptime_seconds": None,
            "database_bytes": sum(f["bytes"] for f in self.files()),
            "connections_used": None, "max_connections": None,
            "cache_hit_ratio": None, "cache_blocks": None,
            "xid_age": None, "xid_age_database": None, "stats_reset": None,
        }

    def activity(self) -> dict:
        return {"visible": None, "hidden_sessions": None, "long_running": [], "idle_in_transaction": [],
                "blocking": []}

    def replication(self) -> dict:
        return {"role": None, "replay_lag_seconds": None, "replicas": []}

    def cluster(self) -> None:
        return None

    def archiving(self) -> None:
        return None

    def tables(self) -> list[dict]:
        tables = []
        for schema in self.schemas:
            sizes = self._btree_sizes(schema)
            indexes_of: dict[str, list[str]] = {}
            for name, table, _sql in self._objects(schema, "index"):
                indexes_of.setdefault(table, []).append(name)
            for table, _tbl, _sql in self._objects(schema, "table"):
                # autoindexes (UNIQUE, PRIMARY KEY on non-rowid) are sqlite_autoindex_<table>_N
                auto = [n for n in (sizes or {}) if n.startswith(f"sqlite_autoindex_{table}_")]
                rows = self.conn.exec_driver_sql(f'SELECT count(*) FROM "{schema}"."{table}"').scalar()
                tables.append({
                    "schema": schema, "table": table, "rows": rows, "rows_source": "count(*)",
                    "table_bytes": sizes.get(table, 0) if sizes is not None else None,
                    "index_bytes": sum(sizes.get(i, 0) for i in indexes_of.get(table, []) + auto)
                    if sizes is not None else None,
                    "toast_bytes": None, "sizes_from": "dbstat" if sizes is not None else None,
                    "dead_tuples": None, "dead_tuple_ratio": None,
                    "last_vacuum": None, "last_autovacuum": None, "last_analyze": None, "last_autoanalyze": None,
                    "seq_scans": None, "index_scans": None, "cache_hit_ratio": None,
                    "partition_of": None, "partitions": None,
                })
        return tables

    def indexes(self) -> list[dict]:
        indexes = []
        for schema in self.schemas:
            sizes = self._btree_sizes(schema) or {}
            first_with_key: dict[tuple, str] = {}
            for table, _tbl, _sql in self._objects(schema, "table"):
                listed = self._all(f'PRAGMA "{schema}".index_list("{table}")')
                # primary key first, then unique, so the redundant one is reported, not the constraint
                listed.sort(key=lambda r: (r[3] != "pk", not r[2], r[1]))
                for _seq, name, unique, origin, partial in listed:
                    columns = tuple(
                        (cid, col, desc, coll) for _no, cid, col, desc, coll, key in
                        self._all(f'PRAGMA "{schema}".index_xinfo("{name}")') if key
                    )
                    sql = self.conn.exec_driver_sql(
                        f'SELECT sql FROM "{schema}".sqlite_master WHERE name = ?', (name,)).scalar()
                    key = (table, columns, sql.split(" WHERE ", 1)[1] if partial and sql else "")
                    duplicate = first_with_key.setdefault(key, name)
                    indexes.append({
                        "schema": schema, "table": table, "index": name, "method": "btree",
                        "bytes": sizes.get(name), "scans": None, "unique": bool(unique), "primary": origin == "pk",
                        "valid": True, "leftover": False, "unused": None,
                        "duplicate_of": duplicate if duplicate != name else None,
                        "bloat_bytes": None, "bloat_ratio": None, "definition": sql,
                    })
        return sorted(indexes, key=lambda i: (i["schema"], i["table"], i["index"]))

    def unindexed_foreign_keys(self) -> list[dict]:
        found = []
        for schema in self.schemas:
            for table, _tbl, _sql in self._objects(schema, "table"):
                leading = []
                for _seq, name, _unique, _origin, partial in self._all(f'PRAGMA "{schema}".index_list("{table}")'):
                    if not partial:
                        leading.append([col for _no, _cid, col in self._all(f'PRAGMA "{schema}".index_info("{name}")')])
                keys: dict[int, dict] = {}
                for fid, _seq, parent, column, _to, _update, on_delete, _match in self._all(
                        f'PRAGMA "{schema}".foreign_key_list("{table}")'):
                    key = keys.setdefault(fid, {"schema": schema, "table": table, "constraint": None, "columns": [],
                                                "parent": f"{schema}.{parent}", "on_delete": on_delete,
                                                "parent_deletes": None})
                    key["columns"].append(column)
                for key in keys.values():
                    width = len(key["columns"])
                    # A rowid table's INTEGER PRIMARY KEY is the table's own key: no index_list entry.
                    if not any(set(cols[:width]) == set(key["columns"]) for cols in leading):
                        found.append(key)
        return found

    def top_queries(self, limit: int) -> dict:
        return {"available": False, "hint": "SQLite keeps no per-query statistics", "queries": []}

    def files(self) -> list[dict]:
        files = []
        for schema in ["main", *self.schemas]:
            path = self.paths.get(schema) or None
            pragma = lambda name: self.conn.exec_driver_sql(f'PRAGMA "{schema}".{name}').scalar()  # noqa: E731
            files.append({
                "schema": schema, "path": path,
                "bytes": os.path.getsize(path) if path and os.path.exists(path) else 0,
                "page_size": pragma("page_size"), "page_count": pragma("page_count"),
                "freelist_count": pragma("freelist_count"),
            })
        return files

    def integrity(self) -> list[dict]:
        results = []
        for schema in ["main", *self.schemas]:
            lines = [r[0] for r in self._all(f'PRAGMA "{schema}".integrity_check')]
            results.append({"schema": schema, "ok": lines == ["ok"], "messages": [] if lines == ["ok"] else lines})
        return results
