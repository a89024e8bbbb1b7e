"""Estimated btree index bloat from the catalog alone (no scan, no superuser).

After ioguix's pgsql-bloat-estimation (BSD licence): the expected number of leaf pages is
computed from pg_class.reltuples, each key column's average width and null fraction in pg_stats,
the tuple and page headers, and the index's fillfactor; whatever the index holds beyond that is
bloat. Estimates follow the last ANALYZE; an index whose columns have no statistics gets none.
"""

from __future__ import annotations

BTREE_BLOAT_SQL = """
WITH idx AS (
    SELECT n.nspname, t.relname AS tblname, ci.relname AS idxname, ci.reltuples, ci.relpages,
           i.indexrelid, i.indrelid, i.indnatts,
           coalesce(substring(array_to_string(ci.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::int, 90)
               AS fillfactor,
           string_to_array(i.indkey::text, ' ')::int[] AS indkey
      FROM pg_index i
      JOIN pg_class ci ON ci.oid = i.indexrelid
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      JOIN pg_am am ON am.oid = ci.relam
     WHERE am.amname = 'btree' AND ci.relpages > 0 AND ci.reltuples >= 0 AND n.nspname = ANY(%(schemas)s)
), cols AS (
    -- A plain key column has its statistics under the table; an expression under the index.
    SELECT idx.nspname, idx.tblname, idx.idxname, idx.reltuples, idx.relpages, idx.fillfactor,
           CASE WHEN idx.indkey[k.pos] = 0 THEN idx.idxname ELSE idx.tblname END AS statrel,
           coalesce(ta.attname, ia.attname) AS attname
      FROM idx
      CROSS JOIN LATERAL generate_series(1, idx.indnatts) AS k(pos)
      LEFT JOIN pg_attribute ta
             ON idx.indkey[k.pos] <> 0 AND ta.attrelid = idx.indrelid AND ta.attnum = idx.indkey[k.pos]
      LEFT JOIN pg_attribute ia
             ON idx.indkey[k.pos] = 0 AND ia.attrelid = idx.indexrelid AND ia.attnum = k.pos
), widths AS (
    SELECT c.nspname, c.tblname, c.idxname, c.reltuples, c.relpages, c.fillfactor,
           count(s.attname) = count(*) AS complete,
           CASE WHEN max(coalesce(s.null_frac, 0)) = 0 THEN 8 ELSE 12 END AS tuple_header,
           sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)) AS data_width
      FROM cols c
      LEFT JOIN pg_stats s ON s.schemaname = c.nspname AND s.tablename = c.statrel AND s.attname = c.attname
     GROUP BY 1, 2, 3, 4, 5, 6
), sized AS (
    SELECT w.*, current_setting('block_size')::numeric AS bs,
           -- header and data each padded to MAXALIGN (8), plus the 4-byte line pointer
           4 + ceil(w.tuple_header / 8.0) * 8 + ceil(w.data_width / 8.0) * 8 AS tuple_width
      FROM widths w
     WHERE w.complete
), expected AS (
    SELECT s.*,
           1 + ceil(s.reltuples / greatest(floor((s.bs - 24 - 16) * s.fillfactor / (100 * s.tuple_width)), 1))
               AS expected_pages
      FROM sized s
)
SELECT nspname, tblname, idxname,
       (bs * relpages)::bigint AS actual_bytes,
       (bs * greatest(relpages - expected_pages, 0))::bigint AS bloat_bytes,
       greatest(relpages - expected_pages, 0) / relpages::numeric AS bloat_ratio
  FROM expected
"""


def index_bloat(conn, schemas) -> dict[tuple[str, str], tuple[int, float]]:
    """(schema, index) -> (estimated bloat in bytes, as a fraction of the index's size)."""
    rows = conn.exec_driver_sql(BTREE_BLOAT_SQL, {"schemas": list(schemas)}).all()
    return {(schema, index): (int(bloat), float(ratio)) for schema, _table, index, _size, bloat, ratio in rows}
