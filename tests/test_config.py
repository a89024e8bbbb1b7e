"""Where the database URL comes from, and how it is shown."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from tdbctl.config import mask_secrets, resolve
from tdbctl.errors import ConfigError


def test_precedence_flag_env_file_default(tmp_path):
    (tmp_path / "tdbctl.toml").write_text('[database]\nurl = "postgresql://f:filepw@filehost/db"\n')
    env = {"TDB_DATABASE_URL": "postgres://t:tpw@thost/db", "DATABASE_URL": "postgresql://d:dpw@dhost/db"}
    assert resolve("sqlite:///x.db", directory=tmp_path, environ=env).source == "--database-url"
    assert resolve(None, directory=tmp_path, environ=env).url.host == "thost"
    assert resolve(None, directory=tmp_path, environ={"DATABASE_URL": env["DATABASE_URL"]}).url.host == "dhost"
    from_file = resolve(None, directory=tmp_path, environ={})
    assert (from_file.source, from_file.url.host) == ("tdbctl.toml", "filehost")
    (tmp_path / "tdbctl.toml").unlink()
    default = resolve(None, directory=tmp_path, environ={})
    assert default.dialect == "sqlite" and default.url.database == str(tmp_path / "tdbctl.db")


def test_postgres_schemes_use_psycopg3(tmp_path):
    for raw in ("postgres://u:p@h/db", "postgresql://u:p@h/db", "postgresql+psycopg2://u:p@h/db"):
        assert resolve(raw, directory=tmp_path, environ={}).url.drivername == "postgresql+psycopg"


def test_masked_url_hides_the_password(tmp_path):
    settings = resolve("postgresql://ops:s3cr3t@db.internal:5432/prod?sslmode=require", directory=tmp_path, environ={})
    assert settings.masked_url == "postgresql://ops:***@db.internal:5432/prod?sslmode=require"
    # As users write it: no SQLAlchemy driver name, a socket directory stays a host= parameter.
    for raw in ("postgres://ops:pw@/app?host=/tmp/x", "postgresql+psycopg2://ops:pw@/app?host=/tmp/x"):
        assert resolve(raw, directory=tmp_path, environ={}).masked_url == "postgresql://ops:***@/app?host=/tmp/x"


@pytest.mark.parametrize("text", [
    "postgresql://u:pw1@h/db", "host=h password=pw1 user=u", "postgresql://u@h/db?password=pw1",
])
def test_mask_secrets_covers_url_and_libpq_forms(text):
    assert "pw1" not in mask_secrets(text)


def test_broken_toml_is_a_config_error(tmp_path):
    (tmp_path / "tdbctl.toml").write_text("[database\nurl=")
    with pytest.raises(ConfigError):
        resolve(None, directory=tmp_path, environ={})


def test_info_says_which_source_won(tmp_path):
    result = run_cli("info", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["url_source"].startswith("default") and report["dialect"] == "sqlite"
    assert report["database_exists"] is False and not (tmp_path / "tdbctl.db").exists()


def test_version_and_help(tmp_path):
    from tdbctl import __version__

    assert run_cli("--version", cwd=tmp_path).stdout.strip() == f"tdbctl {__version__}"
    for command in (["--help"], ["migrate", "--help"], ["info", "--help"], ["migrate", "down", "--help"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 0 and "Usage" in result.stdout
        if command != ["--help"]:
            assert "Example" in result.stdout, command


def test_migrate_lock_timeout_from_toml_and_flag(tmp_path):
    (tmp_path / "tdbctl.toml").write_text(
        '[database]\nurl = "postgresql://ops@127.0.0.1:1/db"\n[migrate]\nlock_timeout = 5\n'
    )
    from_file = run_cli("migrate", "--sql", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    assert "SET LOCAL lock_timeout = '5000ms'" in from_file.stdout
    from_flag = run_cli("migrate", "--sql", "--lock-timeout", "2.5", cwd=tmp_path)
    assert "SET LOCAL lock_timeout = '2500ms'" in from_flag.stdout


@pytest.mark.parametrize("url", [
    "postgresql://postgres:@/b6?host=/tmp/sock",
    "postgresql://u:p%40ss%2Fw@h1:5432,h2:5433/d%62?sslmode=require&application_name=a%20b",
    "postgres://u:s3cret@h/d?password=other&sslmode=disable",
    "postgresql+psycopg://:p@h/d",
    "postgresql://h/d?password=x%26y",
    "postgresql://u@h/?dbname=zz",
    "postgresql://[::1]:5433/db",
    "postgresql://u:pw@h",
])
def test_the_client_url_loses_only_its_password_which_goes_to_the_environment(url):
    """What pg_dump and psql get on their command line: libpq reads it as the configured URL
    without the password (libpq's own parser, through psycopg, is the judge); the password is in
    PGPASSWORD; the database name is read the same way."""
    from psycopg.conninfo import conninfo_to_dict

    from tdbctl.config import resolve
    from tdbctl.ops.libpq import client_uri, dbname_of

    settings = resolve(url)
    uri, env = client_uri(settings, base={})
    expected = conninfo_to_dict("postgresql://" + url.partition("://")[2])
    assert conninfo_to_dict(uri) == {k: v for k, v in expected.items() if k != "password"}
    assert env == ({"PGPASSWORD": expected["password"]} if expected.get("password") else {})
    assert "p%40ss" not in uri and "s3cret" not in uri and "other" not in uri and ":pw@" not in uri
    assert dbname_of(settings) == expected.get("dbname")


def test_a_url_whose_secret_could_not_leave_the_command_line_is_refused():
    from tdbctl.config import resolve
    from tdbctl.errors import ConfigError
    from tdbctl.ops.libpq import client_uri

    with pytest.raises(ConfigError, match="sslpassword"):
        client_uri(resolve("postgresql://u@h/d?sslkey=k.pem&sslpassword=hush"), base={})
