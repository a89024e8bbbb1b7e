"""The DDL of the distribution plan (tdbctl/schema/distribution.py), on PostgreSQL.

``widen_keys`` gives every PostgreSQL the keys a cluster needs (migration 0013): a distributed
table's primary key holds its tenant column, and a foreign key between two tables of one tenant
goes over (key, tenant). ``distribute`` makes a Citus coordinator's tables what the plan says:
reference tables, then distributed ones (parents first, each child colocated with its parent),
after replacing the constraints Citus cannot keep. Both read the catalogs and change only what
differs, so a second run does nothing and a table added by a later migration is picked up.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa


def _q(conn, schema: str, name: str | None = None) -> str:
    preparer = conn.dialect.identifier_preparer
    return preparer.quote_schema(schema) + ("" if name is None else "." + preparer.quote(name))


def _cols(conn, names) -> str:
    return ", ".join(conn.dialect.identifier_preparer.quote(n) for n in names)


def _table(conn, table: sa.Table) -> str:
    return _q(conn, table.schema, table.name)


def _foreign_key_sql(conn, link, *, valid: bool = True) -> str:
    ondelete = (link.constraint.ondelete or "NO ACTION").upper()
    if link.set_null:
        ondelete += f" ({_cols(conn, link.set_null)})"  # PostgreSQL 15+: the tenant column stays
    return (f"ALTER TABLE {_table(conn, link.child)} ADD CONSTRAINT {conn.dialect.identifier_preparer.quote(link.constraint.name)} "
            f"FOREIGN KEY ({_cols(conn, link.columns)}) REFERENCES {_table(conn, link.parent)} "
            f"({_cols(conn, link.referred)}) ON DELETE {ondelete}" + ("" if valid else " NOT VALID"))


def _across_tenants(conn, link) -> int:
    """Rows of the link's child pointing at a parent row of another tenant (the single-column
    key allowed it)."""
    child, parent = _table(conn, link.child), _table(conn, link.parent)
    own = " AND ".join(f"p.{_cols(conn, [r])} = c.{_cols(conn, [c])}" for c, r in zip(link.columns, link.referred))
    present = " AND ".join(f"c.{_cols(conn, [c])} IS NOT NULL" for c in link.columns)
    return conn.exec_driver_sql(f"SELECT count(*) FROM {child} c WHERE {present} AND NOT EXISTS "
                                f"(SELECT 1 FROM {parent} p WHERE {own})").scalar()


def _foreign_key_columns(conn, table: sa.Table, name: str) -> list[str] | None:
    for fk in sa.inspect(conn).get_foreign_keys(table.name, schema=table.schema):
        if fk["name"] == name:
            return fk["constrained_columns"]
    return None


def widen_keys(conn, metadata: sa.MetaData, schemas) -> list[str]:
    """Primary keys and tenant links as the plan wants them on PostgreSQL, for the tables of
    ``schemas`` that exist; returns the statements run."""
    from tdbctl.schema.distribution import distribution_of, primary_key, tenant_links

    inspector = sa.inspect(conn)
    run: list[str] = []

    def execute(statement: str) -> None:
        conn.exec_driver_sql(statement)
        run.append(statement)

    present = {(s, t) for s in schemas for t in inspector.get_table_names(schema=s)}
    links = [link for link in tenant_links(metadata)
             if (link.child.schema, link.child.name) in present and (link.parent.schema, link.parent.name) in present]
    kept = set()
    if int(conn.exec_driver_sql("SHOW server_version_num").scalar()) < 150000:
        # No ON DELETE SET NULL (column) before PostgreSQL 15: such a link, and its parent's key,
        # stay as declared there (Citus needs 16 or later anyway).
        kept = {link.parent.fullname for link in links if link.set_null}
        links = [link for link in links if link.parent.fullname not in kept]
    stale = [link for link in links if _foreign_key_columns(conn, link.child, link.constraint.name) != list(link.columns)]
    for link in stale:  # they refer to the keys about to change
        execute(f"ALTER TABLE {_table(conn, link.child)} DROP CONSTRAINT IF EXISTS "
                f"{conn.dialect.identifier_preparer.quote(link.constraint.name)}")
    for name, declared in distribution_of(metadata).items():
        table = metadata.tables[name]
        if declared.kind != "distributed" or (table.schema, table.name) not in present or name in kept:
            continue
        wanted = primary_key(metadata, name)
        current = inspector.get_pk_constraint(table.name, schema=table.schema)
        if wanted and current["constrained_columns"] != wanted:
            constraint = conn.dialect.identifier_preparer.quote(current["name"] or f"{table.name}_pkey")
            # Two statements: Citus takes no ADD CONSTRAINT beside another subcommand.
            execute(f"ALTER TABLE {_table(conn, table)} DROP CONSTRAINT {constraint}")
            execute(f"ALTER TABLE {_table(conn, table)} ADD CONSTRAINT {constraint} PRIMARY KEY ({_cols(conn, wanted)})")
    for link in stale:
        crossing = _across_tenants(conn, link)
        if crossing:
            # Never a failed deploy for old rows: they stay as they are, new ones are checked.
            import logging

            logging.getLogger("alembic.runtime.migration").warning(
                "%s: %d rows point at a %s row of another tenant; the link over (key, tenant) is added NOT VALID "
                "(new rows are checked); find them with the query in docs/schema.md, then VALIDATE CONSTRAINT",
                link.child.fullname, crossing, link.parent.fullname)
        execute(_foreign_key_sql(conn, link, valid=not crossing))
    return run


def narrow_keys(conn, metadata: sa.MetaData, schemas) -> list[str]:
    """The declared keys back (migration 0013's downgrade)."""
    from tdbctl.schema.distribution import distribution_of, tenant_links
    from tdbctl.schema.partitioning import partitioning_of

    if conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'citus'").first():
        placed = sorted(p.table for p in placements(conn, schemas).values() if p.kind == "distributed")
        if placed:
            from tdbctl.errors import UsageError

            raise UsageError(f"{len(placed)} tables are distributed over the cluster ({', '.join(placed[:3])}, ...), "
                             "and Citus keeps a distributed table's key over its tenant column: below 0013 they "
                             "would have to be undistributed first (undistribute_table); nothing was changed")
    inspector = sa.inspect(conn)
    present = {(s, t) for s in schemas for t in inspector.get_table_names(schema=s)}
    links = [link for link in tenant_links(metadata)
             if (link.child.schema, link.child.name) in present and (link.parent.schema, link.parent.name) in present]
    run = []
    preparer = conn.dialect.identifier_preparer
    for link in links:
        run.append(f"ALTER TABLE {_table(conn, link.child)} DROP CONSTRAINT IF EXISTS {preparer.quote(link.constraint.name)}")
    for name, declared in distribution_of(metadata).items():
        table = metadata.tables[name]
        if declared.kind != "distributed" or (table.schema, table.name) not in present:
            continue
        current = inspector.get_pk_constraint(table.name, schema=table.schema)
        partitioning = partitioning_of(metadata).get(name)
        wanted = partitioning.key(metadata) if partitioning else [c.name for c in table.primary_key.columns]
        if wanted and current["constrained_columns"] != wanted:
            constraint = preparer.quote(current["name"])
            run += [f"ALTER TABLE {_table(conn, table)} DROP CONSTRAINT {constraint}",
                    f"ALTER TABLE {_table(conn, table)} ADD CONSTRAINT {constraint} PRIMARY KEY ({_cols(conn, wanted)})"]
    for link in links:
        fk = link.constraint
        ondelete = f" ON DELETE {fk.ondelete}" if fk.ondelete else ""
        run.append(f"ALTER TABLE {_table(conn, link.child)} ADD CONSTRAINT {preparer.quote(fk.name)} "
                   f"FOREIGN KEY ({_cols(conn, [c.name for c in fk.columns])}) REFERENCES {_table(conn, link.parent)} "
                   f"({_cols(conn, [e.column.name for e in fk.elements])}){ondelete}")
    for statement in run:
        conn.exec_driver_sql(statement)
    return run


# --- Citus ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """How a table is placed on the cluster, from pg_dist_partition."""

    table: str
    kind: str
    """distributed, reference, local (on the coordinator, in Citus's metadata) or plain."""
    column: str | None
    colocation: int | None


def placements(conn, schemas) -> dict[str, Placement]:
    rows = conn.exec_driver_sql(
        "SELECT n.nspname || '.' || c.relname, p.partmethod, p.repmodel, "
        "CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END, p.colocationid "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid "
        "WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
        {"schemas": list(schemas)},
    ).all()
    found = {}
    for name, method, repmodel, column, colocation in rows:
        if method == "h":
            kind = "distributed"
        elif method == "n" and repmodel == "t":
            kind = "reference"
        elif method == "n":
            kind = "local"
        else:
            kind = "plain"
        found[name] = Placement(name, kind, column, colocation)
    return found


def _placement(kind: str, column: str | None) -> str:
    return {"distributed": f"distributed by {column}", "reference": "a reference table",
            "local": "on the coordinator", "plain": "on the coordinator only"}[kind]


def misplaced(conn, metadata: sa.MetaData, schemas) -> list[tuple[str, str]]:
    """(table, what differs) for each table of ``schemas`` not placed as the plan declares."""
    from tdbctl.schema.distribution import distribution_of

    plan = distribution_of(metadata)
    found = placements(conn, schemas)
    wrong = []
    for name, declared in plan.items():
        if declared.schema not in schemas or name not in found:
            continue
        have = found[name]
        if declared.kind == "local":
            ok = have.kind in ("local", "plain")
        else:
            ok = have.kind == declared.kind and (declared.kind != "distributed" or have.column == declared.column)
        if not ok:
            wrong.append((name, f"{_placement(have.kind, have.column)}, declared {_placement(declared.kind, declared.column)}"))
        elif declared.colocate_with and found.get(declared.colocate_with) and \
                found[declared.colocate_with].colocation != have.colocation:
            wrong.append((name, f"not colocated with {declared.colocate_with}"))
    return sorted(wrong)


def loosened(conn, metadata: sa.MetaData, schemas) -> list[str]:
    """Replace the constraints the plan calls loose: a UNIQUE becomes a plain index of the same
    name and columns, a foreign key goes. Returns the statements run."""
    from tdbctl.schema.distribution import distribution_of

    inspector = sa.inspect(conn)
    preparer = conn.dialect.identifier_preparer
    run = []
    for name, declared in distribution_of(metadata).items():
        if declared.schema not in schemas or not declared.loose:
            continue
        table = metadata.tables[name]
        if not inspector.has_table(table.name, schema=table.schema):
            continue
        uniques = {u["name"]: u["column_names"] for u in inspector.get_unique_constraints(table.name, schema=table.schema)}
        fks = {f["name"] for f in inspector.get_foreign_keys(table.name, schema=table.schema)}
        for constraint in declared.loose:
            if constraint in uniques:
                run += [f"ALTER TABLE {_table(conn, table)} DROP CONSTRAINT {preparer.quote(constraint)}",
                        f"CREATE INDEX {preparer.quote(constraint)} ON {_table(conn, table)} ({_cols(conn, uniques[constraint])})"]
            elif constraint in fks:
                run.append(f"ALTER TABLE {_table(conn, table)} DROP CONSTRAINT {preparer.quote(constraint)}")
    for statement in run:
        conn.exec_driver_sql(statement)
    return run


def _foreign_keys_touching(conn, tables: list[str]) -> list[tuple[str, str, str]]:
    """(child, constraint, definition) of each foreign key from or to one of ``tables``, declared
    on the table itself (not a partition's inherited copy)."""
    return [tuple(row) for row in conn.exec_driver_sql(
        "SELECT DISTINCT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.conparentid = 0 "
        "AND (c.conrelid = ANY(%(t)s::regclass[]) OR c.confrelid = ANY(%(t)s::regclass[]))",
        {"t": tables}).all()]


def distribute(conn, metadata: sa.MetaData, schemas) -> list[str]:
    """Place the tables of ``schemas`` on the cluster as the plan declares, parents first.
    Returns what was done, one line a table."""
    from tdbctl.schema.distribution import distribution_of

    plan = distribution_of(metadata)
    # A distribution in a transaction that changed the table: Citus must use one connection a node.
    conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
    # chattrain.messages' trigger touches its own session, a row of the same tenant and node.
    conn.exec_driver_sql("SET LOCAL citus.enable_unsafe_triggers TO on")
    loosened(conn, metadata, schemas)
    found = placements(conn, schemas)
    order = [t.fullname for t in metadata.sorted_tables if t.fullname in plan and t.schema in schemas]
    moving = [name for name in order if plan[name].kind in ("reference", "distributed")
              and name in found and found[name].kind != plan[name].kind]
    if not moving:
        return []
    # Citus places no table that a table still local points at, nor one pointing at a local
    # table: the foreign keys touching the tables that move come off, and back on after.
    held = _foreign_keys_touching(conn, moving)
    for child, name, _ in held:
        conn.exec_driver_sql(f"ALTER TABLE {child} DROP CONSTRAINT {conn.dialect.identifier_preparer.quote(name)}")
    done = []
    for name in moving:
        declared, table = plan[name], metadata.tables[name]
        if declared.kind == "reference":
            conn.execute(sa.text("SELECT create_reference_table(:t)"), {"t": _table(conn, table)})
            done.append(f"{name}: reference table")
        else:
            parent = declared.colocate_with
            conn.execute(sa.text("SELECT create_distributed_table(:t, :c, colocate_with => :w)"),
                         {"t": _table(conn, table), "c": declared.column,
                          "w": _table(conn, metadata.tables[parent]) if parent else "default"})
            done.append(f"{name}: distributed by {declared.column}" + (f", colocated with {parent}" if parent else ""))
    for child, name, definition in held:
        conn.exec_driver_sql(f"ALTER TABLE {child} ADD CONSTRAINT {conn.dialect.identifier_preparer.quote(name)} "
                             + definition.replace("%", "%%"))
    # A table Citus rebuilds (undistribute_table; a local table that a foreign key to a reference
    # table makes Citus's, a shell over one shard) comes back without its comments: they go back on.
    for name in order:
        if name in moving or (plan[name].kind == "local" and found.get(name) and found[name].kind == "plain"):
            table = metadata.tables[name]
            if table.comment:
                conn.execute(sa.schema.SetTableComment(table))
            for column in table.columns:
                if column.comment:
                    conn.execute(sa.schema.SetColumnComment(column))
    return done
