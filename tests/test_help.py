"""The help a person reads: lifecycle order, examples, exit codes, placeholders, 80 columns."""

from __future__ import annotations

import json
import re

import pytest

from conftest import run_cli

COMMANDS = ["migrate", "migrate down", "migrate history", "migrate current", "migrate check", "migrate validate",
            "migrate repair", "migrate baseline", "import", "seed", "info", "stats", "cleanup", "archive", "archive list", "archive verify",
            "archive restore", "archive discard", "partitions", "partitions create", "backup", "backup list", "backup verify",
            "backup setup", "backup drill", "restore", "reindex"]


def _help(*args) -> str:
    result = run_cli(*args, "--help", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_top_level_help_in_lifecycle_order_with_examples_and_exit_codes(tmp_path):
    text = _help()
    listed = re.findall(r"^  (\w+)  ", text.split("Commands:")[1].split("Examples:")[0], re.M)
    assert listed == ["migrate", "import", "seed", "info", "stats", "cleanup", "archive", "partitions", "backup", "restore",
                      "reindex"]
    assert "Examples:" in text and "Exit codes:" in text
    for code in ("0", "1", "2", "3", "4", "5", "6", "7", "130"):
        assert re.search(rf"^\s+{code}\s+\w|\s{code}\s+\w", text, re.M), code
    assert "..." not in text.split("Commands:")[1]  # no summary cut short
    bare = run_cli(cwd=tmp_path)
    assert bare.returncode == 0 and "Commands:" in bare.stdout and "Exit codes:" in bare.stdout
    assert bare.stderr == "" and not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_an_example_plain_placeholders_and_fits_80_columns(command):
    text = _help(*command.split())
    assert "Example" in text, command
    assert not re.search(r"<[a-z ]+>|\{[A-Z]+\}|\b(INTEGER|FLOAT|TEXT)\b", text), text
    assert [line for line in text.splitlines() if len(line) > 80] == []
    assert "README" not in text  # a pip user has no README: the help points at what ships


def test_global_flags_are_taken_before_or_after_the_command(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    for args in (["--json", "--database-url", db, "info"], ["info", "--json", "--database-url", db],
                 ["info", f"--database-url={db}", "--json"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["url"] == db
    refused = run_cli("migrate", "down", "nope", "--debug", "--database-url", db, cwd=tmp_path)
    assert refused.returncode != 0 and "Traceback" in refused.stderr
