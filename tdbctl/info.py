"""`tdbctl info`: where the database is, what it runs, and where its schema stands."""

from __future__ import annotations

from pathlib import Path

from tdbctl.config import Settings
from tdbctl.runtime import open_database


def not_on_dialect(dialect_name: str, installed_extensions: set[str]) -> list[dict]:
    """Schema objects that this dialect does not get, and why."""
    from tdbctl.schema import metadata, objects_of

    skipped = []
    for table in metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda i: i.name):
            condition = getattr(index, "_ddl_if", None)
            if condition is not None and condition.dialect not in (None, dialect_name):
                skipped.append({"kind": "index", "name": f"{table.schema}.{index.name}",
                                "reason": f"{condition.dialect} only"})
    for obj in objects_of(metadata):
        if not obj.supported_on(dialect_name):
            skipped.append({"kind": obj.kind, "name": obj.qualified_name,
                            "reason": f"{', '.join(obj.create)} only"})
        elif obj.requires_extension and obj.requires_extension not in installed_extensions:
            skipped.append({"kind": obj.kind, "name": obj.qualified_name,
                            "reason": f"needs the {obj.requires_extension} extension"})
    return skipped


def whereabouts(settings: Settings) -> dict:
    """What tdbctl knows without the database: where it is pointed, from where, and the head."""
    from tdbctl.migrate.commands import script_directory, single_head

    direct = settings.direct
    return {"url": settings.masked_url, "url_source": settings.source, "dialect": settings.dialect,
            "direct_url": direct.masked_url if direct else None,
            "direct_url_source": direct.source if direct else None, "pooler": None,
            "head": single_head(script_directory(settings))}


def gather(settings: Settings) -> dict:
    from sqlalchemy import inspect

    from tdbctl.migrate.commands import current_revision, script_directory, steps_between
    from tdbctl.schema import ALL_SCHEMAS, metadata
    from tdbctl.schemas import other_schemas

    script = script_directory(settings)
    report = whereabouts(settings)
    head = report["head"]
    expected = {s: sum(1 for t in metadata.tables.values() if t.schema == s) for s in ALL_SCHEMAS}
    if settings.dialect == "sqlite" and not Path(settings.url.database or "").exists():
        report.update(database_exists=False, server_version=None, extensions={}, current=None, baselined=False,
                      other_schemas={},
                      pending=[r.revision for r in steps_between(script, None, head)],
                      domains={s: {"tables": 0, "expected": n, "partitions": 0, "installed": False} for s, n in expected.items()},
                      cluster=None,
                      not_on_this_dialect=not_on_dialect("sqlite", set()))
        return report
    with open_database(settings) as db, db.connect() as conn:
        extensions = db.dialect.extensions(conn)
        current = current_revision(conn)
        from tdbctl.migrate import ledger

        baselined = any(e.version == current and e.how == "baselined" for e in ledger.read(conn)) if current else False
        inspector = inspect(conn)
        present = set(inspector.get_schema_names())
        if current:  # read on this connection: through a pooler of one, a second would wait for it
            from tdbctl.domains import installed

            db.domains = installed(conn)
        # A partition is part of its table, not a table of its own.
        parts = db.dialect.partition_tables(conn, ALL_SCHEMAS)
        domains = {
            schema: {
                "tables": len([t for t in inspector.get_table_names(schema=schema)
                               if t != "alembic_version" and (schema, t) not in parts]) if schema in present else 0,
                "expected": expected[schema],
                "partitions": sum(1 for s, _t in parts if s == schema),
                "installed": db.holds(schema) if current else False,
            }
            for schema in ALL_SCHEMAS
        }
        others = {}
        for schema in other_schemas(present):
            others[schema] = len(inspector.get_table_names(schema=schema))
        report.update(
            database_exists=True,
            other_schemas={s: n for s, n in others.items() if n},
            pooler=db.dialect.pooler(conn, settings),
            server_version=db.dialect.server_version(conn),
            extensions={n: {"installed": e.installed_version, "available": e.available} for n, e in extensions.items()},
            current=current,
            baselined=baselined,
            pending=[r.revision for r in steps_between(script, current, head)],
            domains=domains,
            cluster=db.dialect.cluster(conn, metadata, db.domains if current else ()),
            not_on_this_dialect=not_on_dialect(
                db.dialect.name, {n for n, e in extensions.items() if e.installed}
            ),
        )
    return report
