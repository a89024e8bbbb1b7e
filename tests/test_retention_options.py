"""cleanup and archive read the same selection options the same way (--table, --older-than, --before)."""

from __future__ import annotations

import json

from conftest import run_cli, url_text


def _cli(url, tmp_path, *args):
    return run_cli(*args, cwd=tmp_path, env={"TDB_DATABASE_URL": url_text(url)})


def test_a_bare_table_name_and_before_work_alike_in_cleanup_and_archive(sqlite_url, tmp_path):
    assert _cli(sqlite_url, tmp_path, "migrate").returncode == 0
    cleanup = _cli(sqlite_url, tmp_path, "cleanup", "--table", "error_logs", "--before", "2025-01-01", "--dry-run",
                   "--json")
    assert cleanup.returncode == 0, cleanup.stderr
    planned = json.loads(cleanup.stdout)["policies"]
    assert [(p["policy"], p["cutoff"]) for p in planned] == [("voice.error_logs", "2025-01-01T00:00:00+00:00")]
    archive = _cli(sqlite_url, tmp_path, "archive", "--table", "conversation_logs", "--before", "2025-01-01",
                   "--dry-run", "--json")
    assert archive.returncode == 0, archive.stderr
    planned = json.loads(archive.stdout)["policies"]
    assert [(p["policy"], p["cutoff"]) for p in planned] == [("academy.conversation_logs", "2025-01-01T00:00:00+00:00")]


def test_both_refuse_an_age_and_a_date_together_and_a_date_to_come(sqlite_url, tmp_path):
    assert _cli(sqlite_url, tmp_path, "migrate").returncode == 0
    for command in ("cleanup", "archive"):
        both = _cli(sqlite_url, tmp_path, command, "--older-than", "90d", "--before", "2025-01-01", "--dry-run")
        assert both.returncode == 2 and both.stderr.strip() == "tdbctl: error: give --older-than or --before, not both"
        later = _cli(sqlite_url, tmp_path, command, "--before", "2999-01-01", "--dry-run")
        assert later.returncode == 2 and "--before" in later.stderr and "future" in later.stderr, later.stderr
