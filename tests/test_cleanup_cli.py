"""`tdbctl cleanup` through the real CLI: refusals, the lock, output for cron and for scripts,
--list, --history, --vacuum."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from conftest import run_cli, url_text
from terminal import run_on_terminal, scrollback
from test_cleanup import T, World, ago, runs_rows, snapshot
from tdbctl.config import resolve
from tdbctl.errors import ExitCode
from tdbctl.migrate.commands import upgrade
from tdbctl.ops.claims import claimed
from tdbctl.runtime import open_database
from tdbctl.schema import metadata, policies_of

ANSI = re.compile(r"\x1b\[")


@pytest.fixture
def db(db_url):
    settings = resolve(url_text(db_url))
    upgrade(settings)
    with open_database(settings) as database:
        yield database


def tdb(db, *args, **kwargs):
    """The real CLI in a subprocess."""
    env = {"TDB_DATABASE_URL": url_text(db.settings.url)}
    return run_cli("cleanup", *args, env=env, **kwargs)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def invoke(capsys, monkeypatch):
    """The real CLI entry point (main: parsing, error lines, exit codes) in this process: a
    subprocess costs a second of imports, and these tests make many calls."""
    from tdbctl.cli import main

    def call(db, *args) -> Result:
        monkeypatch.setattr(sys, "argv", ["tdbctl", "--database-url", url_text(db.settings.url), "cleanup", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


BAD_INPUT = [
        (["--older-than", "90x"], "--older-than: '90x' is not a duration"),
        (["--older-than", "0d"], "is zero"),
        (["--before", "last tuesday"], "--before: 'last tuesday' is not a date"),
        (["--before", "2999-01-01"], "is in the future"),
        (["--older-than", "90d", "--before", "2025-01-01"], "not both"),
        (["--policy", "chattrain.nope"], "unknown policy 'chattrain.nope'; valid policies: dispatch.failed_calls"),
        (["--table", "voice.nope"], "no retention policy for table 'voice.nope'"),
        (["--policy", "voice.conversations"], "cleanup never deletes"),
        (["--table", "academy.conversation_logs", "--older-than", "1d"], "use `tdbctl archive`"),
        (["--policy", "voice.error_logs", "--table", "voice.error_logs"], "not both"),
        (["--batch-size", "-5"], "--batch-size: -5 is out of range"),
        (["--batch-size", "0"], "--batch-size: 0 is out of range"),
        (["--max-runtime", "soon"], "--max-runtime: 'soon' is not a duration"),
]


def test_bad_input_is_a_usage_error_that_changes_nothing(db, invoke):
    World(db.engine).build()
    before = snapshot(db.engine)
    for args, says in BAD_INPUT:
        result = invoke(db, *args)
        assert result.returncode == ExitCode.USAGE, (args, result.stderr)
        assert says in result.stderr and result.stderr.startswith("tdbctl: error: "), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert snapshot(db.engine) == before
    assert runs_rows(db.engine) == []


def test_a_second_run_exits_at_once_with_the_lock_code(db):
    World(db.engine).build()
    before = snapshot(db.engine)
    with claimed(db, "archive"):  # archive and cleanup exclude each other
        result = tdb(db, "--older-than", "1d")
    assert result.returncode == ExitCode.LOCKED == 5
    assert re.fullmatch(rf"tdbctl: error: another tdbctl archive \(pid {os.getpid()} on {re.escape(socket.gethostname())}, "
                        r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\) is running on this database\n", result.stderr), result.stderr
    assert snapshot(db.engine) == before and runs_rows(db.engine) == []
    # The lock released, the same line does its job.
    assert tdb(db, "--older-than", "1d").returncode == 0
    assert snapshot(db.engine) != before


def test_cron_output_is_one_plain_line_per_policy_and_json_is_one_document(db, invoke):
    World(db.engine).build()
    names = [p.name for p in policies_of(metadata)]
    # Feedback naming another session's message: SQLite only (PostgreSQL's tenant link refuses it).
    crossing = "chattrain.feedback=2 " if db.dialect.name == "sqlite" else ""

    dry = invoke(db, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == names
    assert not ANSI.search(dry.stdout + dry.stderr)
    fields = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert fields["chattrain.abandoned_sessions"][1:3] == ["would delete", "4"]
    assert "chattrain.messages=8" in fields["chattrain.abandoned_sessions"][3]
    assert f"set null: {crossing}chattrain.user_activity_logs=8" in fields["chattrain.abandoned_sessions"][3]
    assert fields["voice.conversations"][1] == "archive policy: left for tdbctl archive"
    total = re.fullmatch(r"cleanup \(dry run\): would delete (\d+) rows in \d+ tables in [\d.]+s",
                         dry.stderr.splitlines()[-1])

    run = invoke(db, "--json", "--batch-size", "2")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["status"] == "succeeded" and not summary["dry_run"]
    assert total and int(total.group(1)) == sum(summary["rows"].values())
    assert [p["policy"] for p in summary["policies"]] == names
    assert summary["rows"]["chattrain.sessions"] == 4 and summary["rows"]["voice.system_metrics"] == 4
    assert summary["set_null"] == {**({"chattrain.feedback": 2} if crossing else {}), "chattrain.user_activity_logs": 8}
    assert all(p["longest_batch_seconds"] < 5 for p in summary["policies"])

    history = invoke(db, "--history", "--json")
    assert [(r["id"], r["status"]) for r in json.loads(history.stdout)] == [(2, "succeeded"), (1, "dry_run")]
    assert json.loads(history.stdout)[0]["options"]["batch_size"] == 2
    plain = invoke(db, "--history")
    assert plain.stdout.splitlines()[0] == "# Recent cleanup runs"
    assert plain.stdout.splitlines()[2].split("\t")[:4][3] == "succeeded"


def test_list_shows_every_declared_policy_without_a_database(tmp_path):
    result = run_cli("--database-url", f"sqlite:///{tmp_path / 'none.db'}", "cleanup", "--list", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [(p["policy"], p["table"], p["action"], p["default_age"]) for p in listed] == [
        (p.name, p.table, p.action, p.default_age) for p in policies_of(metadata)
    ]
    sessions = {p["policy"]: p for p in listed}["chattrain.abandoned_sessions"]
    assert sessions["condition"] == "chattrain.sessions.status IN ('created', 'in_progress')"
    assert not (tmp_path / "none.db").exists()


def test_vacuum_runs_on_the_touched_tables(db, invoke):
    World(db.engine).build()
    logs = T["chattrain.user_activity_logs"]
    with db.engine.begin() as conn:
        conn.execute(sa.insert(logs), [dict(user_id="u" * 200, activity_type="message_sent", timestamp=ago(100, naive=True))
                                       for _ in range(2000)])
    untouched = invoke(db, "--policy", "chattrain.activity_logs", "--no-vacuum", "--json")
    assert untouched.returncode == 0 and json.loads(untouched.stdout)["vacuumed"] == []
    with db.engine.begin() as conn:
        conn.execute(sa.insert(logs), [dict(user_id="u" * 200, activity_type="message_sent", timestamp=ago(100, naive=True))
                                       for _ in range(2000)])
    result = invoke(db, "--policy", "chattrain.activity_logs", "--json")  # vacuums by default
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    vacuumed = document["vacuumed"]
    assert document["not_vacuumed"] is None
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            # Partitioned: rows 100 days old on a new database are in the DEFAULT partition, and
            # only the partition rows were deleted from has dead tuples to vacuum.
            assert vacuumed == ["VACUUM (ANALYZE, SKIP_LOCKED) chattrain.user_activity_logs_default"]
            stats = conn.exec_driver_sql(
                "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE schemaname = 'chattrain' AND relname = 'user_activity_logs_default'").one()
            assert tuple(stats) == (True, True)
        else:
            assert vacuumed == ['VACUUM "chattrain"', 'ANALYZE "chattrain"."user_activity_logs"']
            assert conn.exec_driver_sql('PRAGMA "chattrain".freelist_count').scalar() == 0


def test_a_terminal_gets_a_progress_bar_and_a_summary_table(db, tmp_path):
    """Under a pseudo-terminal: rich draws, not the tab-separated lines; and at 80 or 160 columns
    no policy, table or cascade count is cut short."""
    World(db.engine).build()
    env = {k: v for k, v in os.environ.items() if k not in ("TDB_DATABASE_URL", "DATABASE_URL")}
    planned = json.loads(tdb(db, "--dry-run", "--json").stdout)["policies"]
    cascades = {table for p in planned for table in (*p["rows"], *p["set_null"]) if table != p["table"]}
    assert {"chattrain.messages", "chattrain.user_activity_logs"} <= cascades
    for columns in (80, 160):
        env.update(TDB_DATABASE_URL=url_text(db.settings.url), COLUMNS=str(columns), LINES="50", TERM="xterm")
        code, output = run_on_terminal(["cleanup", "--dry-run"], env=env)
        assert code == 0, output
        shown = "\n".join(scrollback(output, columns))
        assert "…" not in shown and "\tdeleted\t" not in shown
        words = set(shown.split())
        for policy in [p.name for p in policies_of(metadata)]:
            assert policy in words, (columns, policy, shown)
        for table in cascades:  # each cascade target, whole, with its count
            assert any(w.startswith(f"{table}=") for w in words), (columns, table, shown)
    env["COLUMNS"] = "200"
    code, text = run_on_terminal(["cleanup"], env=env)
    assert code == 0, text
    assert "Cleanup run" in text and "succeeded" in text and "━" in text
    assert "chattrain.abandoned_sessions" in text and "\tdeleted\t" not in text


def test_max_runtime_stops_cleanly_exits_0_and_the_next_run_finishes(db, invoke):
    """The table is held by another transaction: batches wait, pause and retry until --max-runtime
    ends the run between attempts. Nothing is half done; the run is recorded as stopped; the next
    run (lock gone) takes exactly the expired rows."""
    import threading

    logs = T["chattrain.user_activity_logs"]
    with db.engine.begin() as conn:
        rows = World(db.engine).insert(conn, "chattrain.user_activity_logs", [
            dict(user_id="u", activity_type="message_sent", timestamp=ago(days, naive=True)) for days in [100] * 5 + [10] * 3
        ])
    everything = {r["id"] for r in rows}
    live = {r["id"] for r in rows if r["timestamp"] > ago(90, naive=True)}
    holding, release = threading.Event(), threading.Event()

    def hold():
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("LOCK TABLE chattrain.user_activity_logs IN ACCESS EXCLUSIVE MODE")
            else:  # SQLite: an open write transaction on the chattrain file
                conn.exec_driver_sql("INSERT INTO chattrain.system_config (key, value) VALUES ('lock', '1')")
            holding.set()
            release.wait(20)
            conn.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        stopped = invoke(db, "--policy", "chattrain.activity_logs", "--max-runtime", "1s", "--lock-timeout", "0.2", "--json")
    finally:
        release.set()
        holder.join()
    assert stopped.returncode == 0, stopped.stderr
    summary = json.loads(stopped.stdout)
    assert summary["status"] == "stopped" and summary["rows"] == {}
    assert summary["message"].startswith("stopped by --max-runtime 1s")
    assert summary["policies"][0]["status"] == "stopped" and summary["policies"][0]["retries"] >= 1
    with db.engine.connect() as conn:
        assert set(conn.execute(sa.select(logs.c.id)).scalars()) == everything
    assert [(r["status"], r["options"]["max_runtime"]) for r in runs_rows(db.engine)] == [("stopped", "1s")]

    again = invoke(db, "--policy", "chattrain.activity_logs", "--max-runtime", "1h")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split("\t")[:3] == ["chattrain.activity_logs", "deleted", "5"]
    with db.engine.connect() as conn:
        assert set(conn.execute(sa.select(logs.c.id)).scalars()) == live


def test_older_than_says_which_declared_ages_it_replaces(db, invoke):
    from tdbctl.ops.durations import parse_duration

    World(db.engine).build()
    replaced = {p.name: p.default_age for p in policies_of(metadata) if p.action == "delete" and p.default_age
                and parse_duration(p.default_age, option="", allow_zero=True) != parse_duration("90d", option="")}
    assert {"dispatch.failed_calls", "chattrain.abandoned_sessions"} <= set(replaced)
    assert "voice.error_logs" not in replaced  # its own age is 90 days: nothing replaced

    result = invoke(db, "--older-than", "90d", "--dry-run")
    assert result.returncode == 0, result.stderr
    said = result.stderr.splitlines()
    assert said[:len(replaced)] == [f"{name}: age 90d instead of its declared {age}" for name, age in replaced.items()]
    lines = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}
    assert "age 90d (--older-than, instead of the declared 180d)" in lines["dispatch.failed_calls"][3]
    assert "age 90d (--older-than)" in lines["voice.error_logs"][3]

    document = json.loads(invoke(db, "--older-than", "90d", "--dry-run", "--json").stdout)
    assert {o["policy"]: (o["declared"], o["used"]) for o in document["age_overrides"]} == {
        name: (age, "90d") for name, age in replaced.items()}
    plain = invoke(db, "--dry-run")
    assert "instead of" not in plain.stderr + plain.stdout
