"""Draft a domain's initial migration from the metadata: a starting point for review, not a result.

    python tools/draft_migration.py dispatch 0002 0001 > migrations/versions/0002_dispatch.py

Tables and indexes come out as Alembic operations in dependency order, with tdbctl's portable
types by name; PostgreSQL-only indexes are fenced; views, functions and triggers are copied as
SQL literals, frozen as of this revision. Read and edit the result before committing it.
"""

from __future__ import annotations

import sys
import textwrap

import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext

from tdbctl.schema import metadata, objects_of, types

NAMED_TYPES = {id(getattr(types, n)): f"types.{n}" for n in ("JSONB", "TEXT_ARRAY", "INET", "UUID", "TIMESTAMPTZ", "TIMESTAMP")}


def render_item(kind, obj, autogen_context):
    if kind == "type":
        if id(obj) in NAMED_TYPES:
            return NAMED_TYPES[id(obj)]
        variants = getattr(obj, "_variant_mapping", {})
        vector = variants.get("postgresql")
        if vector is not None and type(vector).__name__ == "VECTOR":
            return f"types.vector({vector.dim})"
    if kind == "server_default":
        arg = getattr(obj, "arg", None)
        if isinstance(arg, types.new_uuid):
            return "types.new_uuid()"
        if isinstance(arg, sa.sql.functions.now):
            return "sa.func.now()"
    return False


def render(op_list) -> str:
    context = MigrationContext.configure(dialect_name="postgresql", opts={"render_item": render_item})
    code = render_python_code(ops.UpgradeOps(ops=op_list), render_item=render_item, migration_context=context)
    lines = [line for line in code.splitlines() if "# ###" not in line]
    lines = textwrap.dedent("\n".join(lines)).strip().splitlines()
    return "\n".join(line if line.startswith(("op.", ")")) else "    " + line for line in lines)


def main(schema: str, revision: str, down_revision: str) -> None:
    tables = [t for t in metadata.sorted_tables if t.schema == schema]
    objects = [o for o in objects_of(metadata) if o.schema == schema]
    up, fenced, down = [], [], []
    for table in tables:
        up.append(ops.CreateTableOp.from_table(table))
        for index in sorted(table.indexes, key=lambda i: i.name):
            target = fenced if getattr(index, "_ddl_if", None) is not None else up
            target.append(ops.CreateIndexOp.from_index(index))
    for table in reversed(tables):
        down.append(ops.DropTableOp.from_table(table))
    enums = sorted({c.type.name for t in tables for c in t.columns if isinstance(c.type, sa.Enum) and c.type.name})
    body = [f"migration_ops.create_schema({schema!r})"]
    body += [f"migration_ops.create_extension({e!r})" for e in extensions_needed(tables)]
    body.append(render(up))
    if fenced:
        body.append("if migration_ops.is_postgresql():\n" + textwrap.indent(render(fenced), "    "))
    for obj in objects:
        extension = f", requires_extension={obj.requires_extension!r}" if obj.requires_extension else ""
        body.append(f"migration_ops.run_for_dialect(OBJECTS[{obj.qualified_name!r}]{extension})")
    undo = [f"migration_ops.run_for_dialect(DROPS[{o.qualified_name!r}])" for o in reversed(objects)]
    undo += [render(down)]
    if enums:
        undo.append(f"migration_ops.drop_types({schema!r}, " + ", ".join(repr(e) for e in enums) + ")")
    undo.append(f"migration_ops.drop_schema({schema!r})")
    objects_literal = "{\n" + "".join(
        f"    {o.qualified_name!r}: {{\n" + "".join(
            f"        {d!r}: {textwrap.indent(repr_sql(s), '        ').strip()},\n" for d, s in o.create.items()
        ) + "    },\n" for o in objects) + "}"
    drops_literal = "{\n" + "".join(
        f"    {o.qualified_name!r}: {{" + ", ".join(f"{d!r}: {o.drop_sql(d)!r}" for d in o.create if o.drop_sql(d)) + "},\n"
        for o in objects) + "}"
    print(f'''"""{schema}: initial schema

Revision ID: {revision}
Revises: {down_revision}
"""

import sqlalchemy as sa
from alembic import op

from tdbctl.ddl import migration_ops
from tdbctl.schema import types

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None

# Views, functions and triggers as of this revision (a later change gets a migration of its own).
OBJECTS = {objects_literal}

DROPS = {drops_literal}


def upgrade() -> None:
{textwrap.indent(chr(10).join(body), "    ")}


def downgrade() -> None:
{textwrap.indent(chr(10).join(undo), "    ")}
''')


def extensions_needed(tables) -> list[str]:
    """pgvector for VECTOR columns, pg_trgm for trigram operator classes; never dropped on the way
    down, since other schemas (or applications) may use them."""
    needed = set()
    for table in tables:
        for column in table.columns:
            variant = getattr(column.type, "_variant_mapping", {}).get("postgresql")
            if variant is not None and type(variant).__name__ == "VECTOR":
                needed.add("vector")
        for index in table.indexes:
            if any("trgm" in str(op) for op in index.dialect_options["postgresql"]["ops"].values()):
                needed.add("pg_trgm")
    return sorted(needed)


def repr_sql(sql: str) -> str:
    return '"""\n' + textwrap.dedent(sql).strip("\n") + '\n"""'


if __name__ == "__main__":
    main(*sys.argv[1:4])
