"""Only the domains a platform runs: installed, migrated and looked after, the rest left out."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import pg15
from conftest import run_cli, url_text
from tdbctl.schema import DOMAINS, metadata
from tdbctl.schemas import EXTENSIONS

needs_pg15 = pytest.mark.skipif(not pg15.available(), reason="Debian PostgreSQL 15 binaries not installed")


def tdb(url, *args, cwd):
    return run_cli("--database-url", url if isinstance(url, str) else url_text(url), *args, cwd=cwd)


def engine_for(url):
    text = url if isinstance(url, str) else url_text(url)
    return sa.create_engine(text.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)


def recorded_domains(url) -> list[str]:
    engine = engine_for(url)
    with engine.connect() as conn:
        found = sorted(conn.exec_driver_sql("SELECT domain FROM tdbctl.domains").scalars())
    engine.dispose()
    return found


def table_checksums(url, schema: str) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of the ordered rows of every table of ``schema`` (PostgreSQL)."""
    engine = engine_for(url)
    out = {}
    with engine.connect() as conn:
        for table in [t for t in metadata.sorted_tables if t.schema == schema]:
            out[table.fullname] = tuple(conn.exec_driver_sql(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table.fullname} t"
            ).one())
    engine.dispose()
    return out


def test_the_declared_extensions_are_the_ones_the_tables_need():
    """tdbctl.schemas.EXTENSIONS (what a domain needs installed) agrees with the tables themselves."""
    needed: dict[str, set[str]] = {}
    for table in metadata.sorted_tables:
        for column in table.columns:
            on_postgresql = column.type.dialect_impl(postgresql.dialect())
            if "vector" in type(on_postgresql).__module__:
                needed.setdefault(table.schema, set()).add("vector")
        for index in table.indexes:
            if any("trgm" in str(op) for op in (index.dialect_options["postgresql"].get("ops") or {}).values()):
                needed.setdefault(table.schema, set()).add("pg_trgm")
    assert needed == {domain: set(names) for domain, names in EXTENSIONS.items()}


@pytest.fixture(scope="module")
def pg15_server():
    if not pg15.available():
        pytest.skip("Debian PostgreSQL 15 binaries not installed")
    with pg15.server() as url:
        yield url


@pytest.fixture
def app_db(pg15_server):
    """A database on PostgreSQL 15 (no pgvector on this server) owned by a role that is no
    superuser and may not create databases: the application's role on a managed server."""
    role, name, password = f"app_{uuid.uuid4().hex[:8]}", f"dispatch_{uuid.uuid4().hex[:8]}", "App-Pa55word"
    admin = engine_for(pg15_server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEDB PASSWORD '{password}'")
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER "{role}"')
    admin.dispose()
    server = sa.engine.make_url(pg15_server)
    yield url_text(server.set(username=role, password=password, database=name))
    admin = engine_for(pg15_server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
    admin.dispose()


@needs_pg15
def test_a_dispatch_only_deployment_on_postgresql_15_without_pgvector(app_db, tmp_path):
    migrated = tdb(app_db, "migrate", "--domains", "dispatch", cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "domains: dispatch" in migrated.stderr
    engine = engine_for(app_db)
    with engine.connect() as conn:
        schemas = set(conn.exec_driver_sql("SELECT nspname FROM pg_namespace").scalars())
        extensions = set(conn.exec_driver_sql("SELECT extname FROM pg_extension").scalars())
    assert {"tdbctl", "dispatch"} <= schemas and not schemas & {"voice", "academy", "chattrain"}
    assert extensions == {"plpgsql"}
    assert recorded_domains(app_db) == ["dispatch"]
    check = tdb(app_db, "migrate", "check", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    info = json.loads(tdb(app_db, "info", "--json", cwd=tmp_path).stdout)
    assert {s: d["installed"] for s, d in info["domains"].items() if s in DOMAINS} == {
        "dispatch": True, "voice": False, "academy": False, "chattrain": False}

    assert tdb(app_db, "seed", cwd=tmp_path).returncode == 0
    synthetic = tdb(app_db, "seed", "--synthetic", "--sessions", "300", "--random-seed", "7", cwd=tmp_path)
    assert synthetic.returncode == 0, synthetic.stderr
    named = tdb(app_db, "seed", "--domain", "voice", cwd=tmp_path)
    assert named.returncode == 2 and named.stderr.count("\n") == 1
    assert "domain voice is not installed" in named.stderr

    # Retention on the installed domain: exactly the expired failed calls go, with their children.
    with engine.connect() as conn:
        before = set(conn.exec_driver_sql("SELECT id FROM dispatch.call_sessions").scalars())
        expired = set(conn.exec_driver_sql(
            "SELECT id FROM dispatch.call_sessions WHERE status IN ('terminated', 'error') "
            "AND started_at < now() - interval '180 days'").scalars())
    assert expired and before - expired
    cleaned = tdb(app_db, "cleanup", cwd=tmp_path)
    assert cleaned.returncode == 0, cleaned.stderr
    with engine.connect() as conn:
        after = set(conn.exec_driver_sql("SELECT id FROM dispatch.call_sessions").scalars())
        orphans = conn.exec_driver_sql(
            "SELECT count(*) FROM dispatch.call_transcripts t "
            "WHERE NOT EXISTS (SELECT 1 FROM dispatch.call_sessions s WHERE s.id = t.session_id)").scalar()
    assert after == before - expired and orphans == 0
    other = tdb(app_db, "cleanup", "--policy", "voice.error_logs", cwd=tmp_path)
    assert other.returncode == 2 and "domain voice is not installed" in other.stderr
    assert tdb(app_db, "stats", "--check", cwd=tmp_path).returncode == 0
    for command in (["archive", "--dry-run"], ["reindex", "--all", "--dry-run"], ["partitions"]):
        ran = tdb(app_db, *command, cwd=tmp_path)
        assert ran.returncode == 0 and not any(d in ran.stdout for d in ("voice.", "academy.", "chattrain.")), (
            command, ran.stdout, ran.stderr)

    # Backup and restore of what it has.
    backed = tdb(app_db, "backup", "--to", tmp_path / "backups", cwd=tmp_path)
    assert backed.returncode == 0, backed.stderr
    kept = table_checksums(app_db, "dispatch")
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM dispatch.call_sessions WHERE id IN "
                             "(SELECT id FROM dispatch.call_sessions ORDER BY id LIMIT 20)")
    assert table_checksums(app_db, "dispatch") != kept
    restored = tdb(app_db, "restore", backed.stdout.strip().splitlines()[-1], "--force", "--yes", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert table_checksums(app_db, "dispatch") == kept
    assert recorded_domains(app_db) == ["dispatch"]

    # A domain that needs pgvector cannot come here, and trying changes nothing.
    refused = tdb(app_db, "migrate", "--domains", "dispatch,academy", cwd=tmp_path)
    assert refused.returncode == 1 and "pgvector" in refused.stderr and "nothing was changed" in refused.stderr
    assert recorded_domains(app_db) == ["dispatch"]
    # One that needs nothing more is a migrate away: installed at head, as the migrations make it.
    added = tdb(app_db, "migrate", "--domains", "dispatch,voice", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "installed domain voice" in added.stderr
    assert recorded_domains(app_db) == ["dispatch", "voice"]
    check = tdb(app_db, "migrate", "check", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert table_checksums(app_db, "dispatch") == kept  # the domain that was there is untouched
    engine.dispose()


def test_domains_from_the_configuration_on_sqlite(tmp_path):
    config = tmp_path / "tdbctl.toml"
    config.write_text('[database]\ndomains = ["dispatch"]\n')
    assert run_cli("migrate", cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path / 'tdbctl.db'}"
    check = run_cli("migrate", "check", cwd=tmp_path)
    assert check.returncode == 0, check.stdout
    assert run_cli("seed", cwd=tmp_path).returncode == 0
    info = json.loads(run_cli("info", "--json", cwd=tmp_path).stdout)
    assert info["domains"]["dispatch"] == {"tables": 5, "expected": 5, "partitions": 0, "installed": True}
    assert info["domains"]["chattrain"]["tables"] == 0 and not info["domains"]["chattrain"]["installed"]

    config.write_text('[database]\ndomains = ["dispatch", "chattrain"]\n')
    added = run_cli("migrate", cwd=tmp_path)
    assert added.returncode == 0 and "installed domain chattrain" in added.stderr, added.stderr
    assert run_cli("migrate", "check", cwd=tmp_path).returncode == 0
    seeded = run_cli("seed", "--json", cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    engine = sa.create_engine(url)
    from tdbctl.engine import create_engine

    engine = create_engine(sa.engine.make_url(url))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM chattrain.scenarios").scalar() > 0
        assert sorted(conn.exec_driver_sql("SELECT domain FROM tdbctl.domains").scalars()) == ["chattrain", "dispatch"]
    engine.dispose()

    config.write_text('[database]\ndomains = ["dispatch"]\n')
    fewer = run_cli("migrate", cwd=tmp_path)
    assert fewer.returncode == 0 and "also has chattrain" in fewer.stderr and "never removes" in fewer.stderr
    config.write_text('[database]\ndomains = ["dispatch", "sales"]\n')
    bad = run_cli("migrate", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown domain 'sales'" in bad.stderr


def test_a_database_migrated_before_domains_keeps_all_four(db_url, tmp_path):
    assert tdb(db_url, "migrate", "--to", "0010", cwd=tmp_path).returncode == 0
    upgraded = tdb(db_url, "migrate", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    if db_url.get_backend_name() == "postgresql":
        assert recorded_domains(db_url) == sorted(DOMAINS)
    document = json.loads(tdb(db_url, "migrate", "--json", cwd=tmp_path).stdout)
    assert document["domains"] == list(DOMAINS) and document["added"] == []
    assert tdb(db_url, "migrate", "check", cwd=tmp_path).returncode == 0
