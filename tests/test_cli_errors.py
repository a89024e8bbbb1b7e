"""Bad input and unreachable servers: one clear line on stderr, a documented exit code, no secrets."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

import pg15
from conftest import run_cli, url_text

needs_pg15 = pytest.mark.skipif(not pg15.available(), reason="Debian PostgreSQL 15 binaries not installed")


def assert_one_line(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tdbctl: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def pg15_url():
    with pg15.server() as url:
        yield url


@pytest.mark.parametrize("command", [["backup"], ["restore", "latest", "--yes"]])
def test_backup_and_restore_unreachable_server_or_bad_url_parameter(tmp_path, command):
    """Backup and restore connect through libpq alone (no SQLAlchemy): the same one-line errors."""
    result = run_cli("--database-url", "postgresql://ops:hunter2@127.0.0.1:1/prod", *command, cwd=tmp_path)
    if command[0] == "restore":  # nothing to restore is found before any connection
        assert_one_line(result, 2, "no good backup of postgresql://127.0.0.1:1/prod")
    else:
        assert_one_line(result, 1, "cannot connect to postgresql://ops:***@127.0.0.1:1/prod")
    odd = run_cli("--database-url", "postgresql://ops:hunter2@127.0.0.1:1/prod?color=blue", "backup", cwd=tmp_path)
    assert_one_line(odd, 2, "color")
    assert "hunter2" not in result.stderr + result.stdout + odd.stderr + odd.stdout


def test_unreachable_server(tmp_path):
    result = run_cli("--database-url", "postgresql://ops:hunter2@127.0.0.1:1/prod", "migrate", cwd=tmp_path)
    assert_one_line(result, 1, "cannot connect to postgresql://ops:***@127.0.0.1:1/prod")
    assert "hunter2" not in result.stderr + result.stdout


def test_info_on_an_unreachable_server_still_says_where_it_is_pointed(tmp_path):
    result = run_cli("--database-url", "postgresql://ops:hunter2@127.0.0.1:1/prod", "info", cwd=tmp_path)
    assert_one_line(result, 1, "cannot connect to postgresql://ops:***@127.0.0.1:1/prod")
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert fields == {"database": "postgresql://ops:***@127.0.0.1:1/prod", "from": "--database-url",
                      "dialect": "postgresql", "server": "cannot connect (below)", "head": fields["head"]}
    assert fields["head"].isdigit() and "hunter2" not in result.stdout


def test_malformed_url_is_a_usage_error(tmp_path):
    result = run_cli("--database-url", "postgresql://ops:hunter2@host:notaport/db", "info", cwd=tmp_path)
    assert_one_line(result, 2, "database URL from --database-url: port 'notaport' is not a port number")
    assert "hunter2" not in result.stderr


def test_unsupported_backend_is_a_usage_error(tmp_path):
    result = run_cli("info", cwd=tmp_path, env={"TDB_DATABASE_URL": "mysql://u:p@h/db"})
    assert_one_line(result, 2, "unsupported database 'mysql' from TDB_DATABASE_URL")


def test_missing_database(pg_server_url, tmp_path):
    url = pg_server_url.set(database="no_such_database_here")
    result = run_cli("--database-url", url_text(url), "info", cwd=tmp_path)
    assert_one_line(result, 1, "no_such_database_here", "does not exist")


def test_unknown_revision_is_a_usage_error(sqlite_url, tmp_path):
    result = run_cli("--database-url", str(sqlite_url), "migrate", "--to", "nope", cwd=tmp_path)
    assert_one_line(result, 2, "unknown revision 'nope'")
    assert not sa.inspect(sa.create_engine(sqlite_url)).get_table_names(), "nothing was created"


def test_bad_option_is_a_usage_error(tmp_path):
    result = run_cli("migrate", "--lock-wait", "-3", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_json_errors_come_as_json(tmp_path):
    result = run_cli("--database-url", "postgresql://ops:hunter2@127.0.0.1:1/prod", "info", "--json", cwd=tmp_path)
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 1 and "cannot connect" in error["message"]
    assert "hunter2" not in result.stdout + result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "--database-url", "postgresql://ops:x@127.0.0.1:1/prod", "info", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr


@needs_pg15
def test_wrong_password_is_one_line_without_the_password(pg15_url, tmp_path):
    wrong = pg15_url.replace(pg15.PASSWORD, "not-the-Pa55word")
    result = run_cli("--database-url", wrong, "migrate", cwd=tmp_path)
    assert_one_line(result, 1, "password authentication failed")
    assert "not-the-Pa55word" not in result.stderr + result.stdout


@needs_pg15
def test_server_without_pgvector_stops_before_any_change(pg15_url, tmp_path):
    result = run_cli("migrate", cwd=tmp_path, env={"TDB_DATABASE_URL": pg15_url})
    assert_one_line(result, 1, "pgvector", "nothing was changed")
    assert pg15.PASSWORD not in result.stderr
    engine = sa.create_engine(pg15_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        schemas = set(conn.exec_driver_sql("SELECT nspname FROM pg_namespace").scalars())
    engine.dispose()
    assert not schemas & {"tdbctl", "dispatch", "voice", "academy", "chattrain"}
    info = run_cli("info", "--json", cwd=tmp_path, env={"TDB_DATABASE_URL": pg15_url})
    report = json.loads(info.stdout)
    assert report["extensions"]["vector"] == {"installed": None, "available": False}
    assert report["current"] is None


def test_password_from_the_environment_never_shows(pg_server_url, tmp_path):
    url = url_text(pg_server_url.set(password="Zebra-Secret-99"))
    result = run_cli("info", "--json", cwd=tmp_path, env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["url_source"] == "DATABASE_URL"
    assert "Zebra-Secret-99" not in result.stdout + result.stderr


BAD_INPUT = [
    (["cleanup", "--older-than", "99999999y"], "--older-than"),
    (["cleanup", "--max-runtime", "99999999y"], "--max-runtime"),
    (["cleanup", "--older-than", "٩٠d"], "--older-than"),
    (["cleanup", "--lock-timeout", "nan"], "--lock-timeout"),
    (["cleanup", "--statement-timeout", "inf"], "--statement-timeout"),
    (["migrate", "--lock-timeout", "nan"], "--lock-timeout"),
    (["migrate", "--lock-wait", "inf"], "--lock-wait"),
    (["stats", "--since", "99999999y"], "--since"),
    (["seed", "--synthetic", "--span", "99999999y"], "--span"),
    (["seed", "--synthetic", "--until", "9999-12-31"], "--until"),
    (["seed", "--synthetic", "--until", "9999-12-31", "--dry-run"], "--until"),
    (["seed", "--synthetic", "--until", "0001-01-01"], "--until"),
    (["seed", "--synthetic", "--sessions", "99999999999999999999"], "--sessions"),
    (["archive", "--to", "{tmp}/archive", "--batch-size", "99999999999999999999"], "--batch-size"),
    (["archive", "--to", "{tmp}/archive", "--older-than", ""], "--older-than"),
    (["archive", "--to", "{tmp}/archive", "--older-than", "٩٠d"], "--older-than"),
    (["archive", "--to", ""], "--to"),
    (["archive", "--to", "{tmp}/a-file/archive"], "--to"),
    (["archive", "restore", "99999999999999999999999"], "BATCH"),
    (["backup", "--to", "{tmp}/backups", "--keep-days", "nan"], "--keep-days"),
    (["backup", "--to", "{tmp}/backups", "--keep-days", "inf"], "--keep-days"),
    (["backup", "--to", ""], "--to"),
    (["backup", "--to", "{tmp}/a-file/backups"], "backup directory"),
]


def test_bad_input_is_a_usage_error_found_before_anything_is_written(tmp_path):
    """Each of these once ended in exit 1 ('Python int too large', 'Infinity', 'unexpected error'),
    some after a batch was opened or a backup written."""
    from test_archive_data import snapshot
    from tdbctl.config import resolve
    from tdbctl.engine import create_engine
    from tdbctl.migrate.commands import upgrade

    db_dir = tmp_path / "db"
    db_dir.mkdir()
    settings = resolve(f"sqlite:///{db_dir / 'tdbctl.db'}")
    upgrade(settings)
    (tmp_path / "a-file").write_text("")
    engine = create_engine(settings.url)
    before = snapshot(engine)
    files = sorted(p.name for p in db_dir.iterdir())
    for args, says in BAD_INPUT:
        args = [a.replace("{tmp}", str(tmp_path)) for a in args]
        result = run_cli(*args, cwd=db_dir)
        assert_one_line(result, 2, says)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "db"], args
        assert sorted(p.name for p in db_dir.iterdir()) == files, args
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM tdbctl.runs").scalar() == 0
    engine.dispose()


@pytest.mark.parametrize("url, says", [
    ("postgresql://ops:pw@localhost:99999/app", "port '99999'"),
    ("postgresql://ops:pw@localhost/app?port=0", "port '0'"),
    ("postgresql://ops:pw@localhost/app?sslmode=bogus", "sslmode='bogus'"),
    ("postgresql://ops:pw@localhost/app?bogus=1", "unknown connection parameter 'bogus'"),
])
@pytest.mark.parametrize("command", [["info"], ["cleanup"], ["backup"], ["migrate"]])
def test_a_url_libpq_would_refuse_is_a_usage_error_before_connecting(tmp_path, url, says, command):
    result = run_cli("--database-url", url, *command, cwd=tmp_path)
    assert_one_line(result, 2, says)
    assert "pw" not in result.stderr.replace("pw@", "") and list(tmp_path.iterdir()) == []


def test_sqlite_files_are_created_owner_only(tmp_path):
    result = run_cli("migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert len(modes) == 7 and set(modes.values()) == {0o600}, modes


NEEDS_A_DATABASE = [
    ["cleanup"], ["cleanup", "--dry-run"], ["cleanup", "--history"], ["archive", "--to", "archive"],
    ["archive", "list"], ["archive", "verify"], ["archive", "restore", "1"], ["reindex", "--all"],
    ["seed"], ["stats"], ["stats", "--check"],
]


def test_a_missing_database_is_said_once_and_nothing_is_created(tmp_path):
    """Only migrate creates the SQLite files; every other command says how to get a database."""
    for command in NEEDS_A_DATABASE:
        result = run_cli(*command, cwd=tmp_path)
        assert_one_line(result, 7, "tdbctl migrate")
        assert list(tmp_path.iterdir()) == [], command


def test_an_unmigrated_or_older_database_is_said_once(db_url, tmp_path):
    from tdbctl.config import resolve
    from tdbctl.migrate.commands import upgrade

    text = url_text(db_url)
    if db_url.get_backend_name() == "sqlite":
        upgrade(resolve(text), "0001")  # files, but not tdbctl's bookkeeping of this version
    for command in NEEDS_A_DATABASE:
        if command[0] == "stats":
            continue  # the server's health needs no tdbctl table
        result = run_cli("--database-url", text, *command, cwd=tmp_path)
        assert_one_line(result, 7, "tdbctl migrate")
        assert "does not exist" not in result.stderr and "no such table" not in result.stderr
    upgrade(resolve(text), "0006")
    for command in (["cleanup"], ["archive", "--to", tmp_path / "a"], ["seed"]):
        result = run_cli("--database-url", text, *command, cwd=tmp_path)
        assert_one_line(result, 7, "at revision 0006", "tdbctl migrate")


@pytest.mark.parametrize("password", ["x", "e", "p@ss:/%w", "%"])
def test_a_password_is_masked_whole_and_only_itself(tmp_path, password):
    """With the password 'x', 'extension' is not 'e***tension'; one with @:/% is never shown in part."""
    from urllib.parse import quote

    url = f"postgresql://ops:{quote(password, safe='')}@127.0.0.1:1/extension_x"
    result = run_cli("--database-url", url, "migrate", cwd=tmp_path)
    assert_one_line(result, 1, "postgresql://ops:***@127.0.0.1:1/extension_x", "connect")
    line = result.stderr.replace("ops:***@", "")
    if len(password) > 1:
        assert password not in line and quote(password, safe="") not in line
    assert "***" not in line.replace("connection", "")  # nothing else was masked: no word cut


def test_a_raw_at_sign_in_the_password_is_refused_without_showing_it(tmp_path):
    result = run_cli("--database-url", "postgresql://ops:Zq7PW@secretXK@/small?host=/tmp", "info", cwd=tmp_path)
    assert_one_line(result, 2, "percent-encode")
    assert "Zq7PW" not in result.stderr + result.stdout and "secretXK" not in result.stderr + result.stdout


@needs_pg15
def test_revisions_that_need_no_extension_migrate_without_pgvector(pg15_url, tmp_path):
    """Only the revisions being applied are checked: dispatch and voice need no pgvector."""
    engine = sa.create_engine(pg15_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE dispatch_only")
    engine.dispose()
    url = pg15_url.rsplit("/", 1)[0] + "/dispatch_only"
    partial = run_cli("migrate", "--to", "0004", cwd=tmp_path, env={"TDB_DATABASE_URL": url})
    assert partial.returncode == 0, partial.stderr
    rest = run_cli("migrate", cwd=tmp_path, env={"TDB_DATABASE_URL": url})
    assert_one_line(rest, 1, "pgvector", "nothing was changed")
    current = run_cli("migrate", "current", "--json", cwd=tmp_path, env={"TDB_DATABASE_URL": url})
    assert json.loads(current.stdout)["current"] == "0004"


def test_a_seeds_dir_without_seeds_is_a_usage_error(sqlite_url, tmp_path):
    from tdbctl.config import resolve
    from tdbctl.migrate.commands import upgrade

    upgrade(resolve(url_text(sqlite_url)))
    for where in (tmp_path / "nonexistent", tmp_path):
        result = run_cli("--database-url", url_text(sqlite_url), "seed", "--seeds-dir", where, cwd=tmp_path)
        assert_one_line(result, 2, "--seeds-dir")
