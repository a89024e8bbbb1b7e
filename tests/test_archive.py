"""`tdbctl archive` on SQLite and PostgreSQL: exact row sets, exact round trips, verify, the CLI.

Every test compares snapshots of every domain table as the database stores it (test_archive_data):
live rows plus archived rows must be the original rows, and restoring must give back exactly the
database that was archived.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import run_cli
from test_archive_data import (  # noqa: F401  (fixtures)
    FIDELITY_POLICIES, T, _pg_template, _sqlite_template, archive_db, checksums, domain_tables, fill, snapshot,
)
from tdbctl.archive.codec import kind_of
from tdbctl.archive.commands import ArchiveRequest, list_batches, run
from tdbctl.archive.restore import restore, verify
from tdbctl.errors import UsageError
from tdbctl.ops.cascade import cascade_tree
from tdbctl.retention.selection import select
from tdbctl.schema import metadata, policies_of
from tdbctl.schema.bookkeeping import archive_batches

NOW = datetime.now(timezone.utc)
IN_PLACE = {"chattrain.sessions"}


def all_policies():
    return archive_policies() + FIDELITY_POLICIES


def batch_files(to: Path) -> dict[str, list[dict]]:
    """Every row line in every batch file under ``to``, per table (links files apart)."""
    rows: dict[str, list[dict]] = {}
    for path in sorted(to.rglob("*.jsonl.gz")):
        table = path.name[: -len(".jsonl.gz")]
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            rows.setdefault(table, []).extend(json.loads(line) for line in handle)
    return rows


def typed_rows(engine, table: sa.Table) -> dict:
    with engine.connect() as conn:
        return {row._mapping[table.primary_key.columns.values()[0].name]: row._mapping
                for row in conn.execute(sa.select(table))}


def check_lines_against(line: dict, original, table: sa.Table, dialect: str) -> None:
    """Independent of tdbctl's codec: text, numbers, booleans and JSON as JSON sees them."""
    for column in table.columns:
        value = original[column.name]
        if isinstance(column.type, (sa.String, sa.Text, sa.Integer, sa.Boolean)):
            value = value if value is None or isinstance(value, (str, int, bool)) else str(value)  # INET
            assert line.get(column.name) == value, (table.fullname, column.name)
            assert (column.name in line) == (value is not None)
        elif kind_of(column, dialect) == "json":
            assert line.get(column.name) == value, (table.fullname, column.name)


def test_archive_and_restore_round_trip(archive_db, tmp_path):
    db = archive_db
    expected = fill(db.engine, NOW)
    before = snapshot(db.engine)
    originals = {name: typed_rows(db.engine, T[name]) for name in expected}
    to = tmp_path / "archive"

    report = run(db.settings, ArchiveRequest(to=str(to), batch_size=2), policies=all_policies())
    assert report.status == "succeeded" and report.recovered == []
    by_policy = {p["policy"]: p for p in report.policies}
    assert by_policy["voice.conversations"]["blocked"] == 1  # held by a system_metrics row
    assert by_policy["voice.conversations"]["held_by"] == ["voice.system_metrics"]
    assert by_policy["test.scenarios"]["blocked"] == 1  # held by its sessions
    assert by_policy["test.scenarios"]["held_by"] == ["chattrain.documents", "chattrain.sessions"]
    assert by_policy["dispatch.completed_calls"]["held_by"] == []  # no table references call sessions without ON DELETE
    assert by_policy["dispatch.completed_calls"]["rows"]["dispatch.call_sessions"] == 6
    assert len(by_policy["dispatch.completed_calls"]["batches"]) == 3

    after = snapshot(db.engine)
    files = batch_files(to)
    archived_conversations = {db.key(k) for k in expected["voice.conversations"]}
    relinked = {key for key, row in before["voice.error_logs"].items()
                if any(c in str(row) for c in archived_conversations)}
    assert len(relinked) == 3
    for table in domain_tables():
        name = table.fullname
        taken = {db.key(k) for k in expected.get(name, ())}
        if name in IN_PLACE:
            assert set(after[name]) == set(before[name])
            continue
        if name == "voice.conversations_archive":
            # The archive table holds the archived conversations, value for value.
            assert after[name] == {k: before["voice.conversations"][k] for k in archived_conversations}
            continue
        assert set(after[name]) == set(before[name]) - taken, name
        for key, row in after[name].items():
            if key not in relinked:
                assert row == before[name][key], (name, key)
        # Each archived row is in the files exactly once, and nothing else is.
        in_files = [line for line in files.get(name, [])]
        pk = table.primary_key.columns.values()[0].name if table.primary_key.columns else None
        if taken:
            keys = [db.key(_as_key(line[pk], table)) for line in in_files]
            assert sorted(keys) == sorted(taken), name
            for line in in_files:
                check_lines_against(line, originals[name][_as_key(line[pk], table)], table, db.dialect)
        else:
            assert not in_files, name
    with db.engine.connect() as conn:
        links = conn.execute(sa.select(T["voice.error_logs"].c.id, T["voice.error_logs"].c.conversation_id)).all()
        assert sum(1 for _, c in links if c is None) == 3
        sessions = T["chattrain.sessions"]
        archived = conn.execute(sa.select(sessions.c.id, sessions.c.metadata).where(sessions.c.status == "archived")).all()
    assert {row.id for row in archived} == expected["chattrain.sessions"]
    assert all("archived_at" in row.metadata and row.metadata["tdbctl_archive"]["batch"] for row in archived)
    # In place, nothing was deleted: the sessions' messages and feedback are exactly as they were.
    for name in ("chattrain.messages", "chattrain.feedback"):
        assert after[name] == before[name]

    assert all(result.ok for result in verify(db.settings)), [r.problems for r in verify(db.settings)]
    batches = list_batches(db.settings, status="archived")
    assert len(batches) == sum(len(p["batches"]) for p in report.policies)
    for batch in batches:
        result = restore(db.settings, batch.id)
        assert result.status == "restored"
    restored = snapshot(db.engine)
    assert checksums(restored) == checksums(before)
    assert restored == before

    # Twice: the catalog says so, and nothing changes.
    for batch in batches:
        assert restore(db.settings, batch.id).note == "already restored: nothing to do"
    # Even if the catalog had lost the 'restored' mark, a second restore adds nothing.
    with db.engine.begin() as conn:
        conn.execute(sa.update(archive_batches).values(status="archived").where(archive_batches.c.status == "restored"))
    for batch in batches:
        again = restore(db.settings, batch.id)
        assert sum(again.inserted.values()) == 0 and sum(again.relinked.values()) == 0
    assert snapshot(db.engine) == before


def _as_key(value, table: sa.Table):
    import uuid

    column = table.primary_key.columns.values()[0]
    return uuid.UUID(value) if isinstance(column.type, sa.Uuid) else value


def test_dry_run_counts_and_changes_nothing(archive_db, tmp_path):
    db = archive_db
    expected = fill(db.engine, NOW)
    before = snapshot(db.engine)
    to = tmp_path / "archive"
    report = run(db.settings, ArchiveRequest(to=str(to), dry_run=True), policies=all_policies())
    assert report.status == "dry_run"
    counted = {}
    for plan in report.policies:
        for table, count in plan["rows"].items():
            counted[table] = counted.get(table, 0) + count
    assert counted == {t: len(expected.get(t, ())) for t in counted}
    plans = {plan["policy"]: plan for plan in report.policies}
    assert (plans["voice.conversations"]["blocked"], plans["voice.conversations"]["held_by"]) == \
        (1, ["voice.system_metrics"])
    assert snapshot(db.engine) == before
    assert not to.exists()
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(archive_batches)).scalar() == 0
    # Without --to: the same counts (where the files would go is not needed to count them).
    preview = run(db.settings, ArchiveRequest(dry_run=True), policies=all_policies())
    assert [p["rows"] for p in preview.policies] == [p["rows"] for p in report.policies]
    assert plans["voice.conversations"]["destination"].endswith("voice.conversations")
    assert {p["policy"]: p["destination"] for p in preview.policies}["voice.conversations"] == \
        "voice.conversations_archive + (files: give --to DIR)"
    assert snapshot(db.engine) == before


def test_max_runtime_stops_before_the_next_batch(archive_db, tmp_path):
    db = archive_db
    fill(db.engine, NOW)
    before = snapshot(db.engine)
    report = run(db.settings, ArchiveRequest(to=str(tmp_path), max_runtime=timedelta(microseconds=1)))
    assert report.status == "stopped"
    assert sum(len(p["batches"]) for p in report.policies) == 0
    assert snapshot(db.engine) == before


def test_cli_verify_catches_damage_and_restore_refuses(archive_db, tmp_path):
    db = archive_db
    fill(db.engine, NOW)
    before = snapshot(db.engine)
    to = tmp_path / "archive"
    env = {"TDB_DATABASE_URL": db.text}

    missing_to = run_cli("archive", "--policy", "dispatch.completed_calls", env=env, cwd=tmp_path)
    assert missing_to.returncode == 2 and "--to DIR" in missing_to.stderr
    unknown = run_cli("archive", "--to", to, "--policy", "nope", env=env, cwd=tmp_path)
    assert unknown.returncode == 2 and "dispatch.completed_calls" in unknown.stderr
    assert snapshot(db.engine) == before

    done = run_cli("archive", "--to", to, "--policy", "dispatch.completed_calls", "--batch-size", "2", "--json",
                   env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    batches = json.loads(done.stdout)["policies"][0]["batches"]
    assert len(batches) == 3

    listed = run_cli("archive", "list", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0
    assert sorted(b["id"] for b in json.loads(listed.stdout) if b["status"] == "archived") == batches
    assert run_cli("archive", "verify", env=env, cwd=tmp_path).returncode == 0

    # Owner-only, and readable without tdbctl: gzip and JSON, checksums as sha256sum gives them.
    for path in to.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    directories = sorted(p for p in to.rglob("*batch*") if p.is_dir())
    manifest = json.loads((directories[0] / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (directories[0] / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(gzip.decompress(data).splitlines()) == entry["rows"]

    flipped, truncated, removed = directories
    target = flipped / "dispatch.call_transcripts.jsonl.gz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    result = run_cli("archive", "verify", env=env, cwd=tmp_path)
    assert result.returncode == 3 and "dispatch.call_transcripts.jsonl.gz" in result.stdout
    target = truncated / "dispatch.call_sessions.jsonl.gz"
    target.write_bytes(target.read_bytes()[:-9])
    (removed / "dispatch.extracted_entities.jsonl.gz").unlink()
    result = run_cli("archive", "verify", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 3
    problems = {r["batch"]: r["problems"] for r in json.loads(result.stdout)}
    assert [len(problems[b]) > 0 for b in batches] == [True, True, True]
    assert any("truncated" in p or "bytes" in p for p in problems[batches[1]])
    assert any("missing" in p for p in problems[batches[2]])
    for batch in batches:
        assert run_cli("archive", "verify", batch, env=env, cwd=tmp_path).returncode == 3

    live = snapshot(db.engine)
    refused = run_cli("archive", "restore", batches[0], env=env, cwd=tmp_path)
    assert refused.returncode == 3 and "nothing restored" in refused.stderr
    assert snapshot(db.engine) == live


def archive_policies(**selection):
    return [t.policy for t in select(policies_of(metadata), "archive", now=NOW, metadata=metadata, **selection)]


def test_usage_errors_and_policy_tree():
    with pytest.raises(UsageError, match="academy.conversation_logs"):
        archive_policies(names=["voice.nope"])
    with pytest.raises(UsageError, match="ambiguous"):
        archive_policies(tables=["scenarios"])
    with pytest.raises(UsageError, match="no archive policy for table 'dispatch.training_scenarios'"):
        archive_policies(tables=["dispatch.training_scenarios"])
    assert [p.name for p in archive_policies(tables=["voice.conversations"])] == ["voice.conversations"]
    tree = cascade_tree(metadata, "voice.conversations")
    assert {t.fullname for t in tree.children} == {
        "voice.conversation_turns", "voice.state_transitions", "voice.extracted_slots", "voice.appointments",
        "voice.user_feedback"}
    assert [link.child.fullname for link in tree.detached] == ["voice.error_logs"]
    assert [link.child.fullname for link in tree.blocking] == ["voice.system_metrics"]
    order = [t.fullname for t in tree.delete_order()]
    assert order.index("voice.extracted_slots") < order.index("voice.conversation_turns") < order.index(
        "voice.conversations")


def test_lines_spanning_many_copy_messages(archive_db, tmp_path, monkeypatch):
    """PostgreSQL's server joins CHUNK_LINES lines into one COPY message: with 2, every table of a
    batch spans several messages, some of one line; the files still hold exactly the rows taken."""
    from tdbctl.archive import rowio_postgresql

    monkeypatch.setattr(rowio_postgresql, "CHUNK_LINES", 2)
    db = archive_db
    expected = fill(db.engine, NOW, transcripts=5)
    before = snapshot(db.engine)
    tree = cascade_tree(metadata, "dispatch.call_sessions")
    originals = {t.fullname: typed_rows(db.engine, t) for t in tree.members}
    to = tmp_path / "archive"
    policies = [p for p in archive_policies() if p.name == "dispatch.completed_calls"]
    report = run(db.settings, ArchiveRequest(to=str(to)), policies=policies)
    assert report.status == "succeeded"
    (result,) = report.policies
    after, files = snapshot(db.engine), batch_files(to)
    for table in tree.members:
        name = table.fullname
        taken = {db.key(k) for k in expected.get(name, ())}
        assert result["rows"][name] == len(taken)
        assert set(after[name]) == set(before[name]) - taken, name
        keys = [db.key(_as_key(line["id"], table)) for line in files.get(name, [])]
        assert sorted(keys) == sorted(taken), name
        for line in files.get(name, []):
            check_lines_against(line, originals[name][_as_key(line["id"], table)], table, db.dialect)
    assert len(expected["dispatch.call_transcripts"]) >= 5 * len(expected["dispatch.call_sessions"]) > 5
    for batch in result["batches"]:
        restore(db.settings, batch)
    assert snapshot(db.engine) == before


@pytest.mark.parametrize("archive_db", ["postgresql"], indirect=True)
def test_a_row_joining_a_batch_meanwhile_is_archived_not_lost(archive_db, tmp_path, monkeypatch):
    """PostgreSQL batches lock only their roots: an entity committed under one of the batch's
    transcripts between the DELETE of the batch's entities and that of its transcripts would be
    removed by the RI cascade without being written. REPEATABLE READ turns that into a serialization failure; the batch is rolled back,
    discarded, and run again, and the entity ends in the files like its siblings."""
    from tdbctl.archive.rowio import KEYS_TABLE
    from tdbctl.archive.rowio_postgresql import PostgresRowIO

    db = archive_db
    expected = fill(db.engine, NOW)
    take_rows = PostgresRowIO.take_rows
    late = uuid.UUID(int=0xA5C1_0000_0000_0000_0000_0000_0000_FFFF)
    injected = []

    def take_rows_after_a_late_entity(self, conn, table, condition, sink):
        # Between the batch's DELETE of entities and its DELETE of their transcripts.
        if table.fullname == "dispatch.call_transcripts" and not injected:
            roots = [row[0] for row in conn.exec_driver_sql(f"SELECT k FROM {KEYS_TABLE}")]
            with db.engine.begin() as other:  # another session, committed before the transcripts go
                transcript, session = other.execute(sa.select(
                    T["dispatch.call_transcripts"].c.id, T["dispatch.call_transcripts"].c.session_id).where(
                    T["dispatch.call_transcripts"].c.session_id.in_(roots)).limit(1)).one()
                roots_of = {transcript: session}
                other.execute(sa.insert(T["dispatch.extracted_entities"]).values(
                    id=late, transcript_id=transcript, session_id=roots_of[transcript], entity_type="LATE", entity_value="joined meanwhile",
                    confidence_score=0.5, start_char=0, end_char=1))
            injected.append(transcript)
        return take_rows(self, conn, table, condition, sink)

    monkeypatch.setattr(PostgresRowIO, "take_rows", take_rows_after_a_late_entity)
    to = tmp_path / "archive"
    policies = [p for p in archive_policies() if p.name == "dispatch.completed_calls"]
    report = run(db.settings, ArchiveRequest(to=str(to)), policies=policies)
    assert report.status == "succeeded" and injected
    files = batch_files(to)
    entities = sorted(line["id"] for line in files["dispatch.extracted_entities"])
    assert entities == sorted(str(k) for k in {*expected["dispatch.extracted_entities"], late})
    late_line = next(line for line in files["dispatch.extracted_entities"] if line["id"] == str(late))
    assert late_line["entity_value"] == "joined meanwhile" and late_line["transcript_id"] == str(injected[0])
    with db.engine.connect() as conn:
        states = [row[0] for row in conn.execute(sa.select(archive_batches.c.status).order_by(archive_batches.c.id))]
        assert conn.execute(sa.select(sa.func.count()).select_from(T["dispatch.extracted_entities"])
                            .where(T["dispatch.extracted_entities"].c.id == late)).scalar() == 0
    assert states[0] == "discarded" and "archived" in states[1:] and "discarded" not in states[1:]
    for batch in report.policies[0]["batches"]:
        restore(db.settings, batch)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(T["dispatch.extracted_entities"].c.entity_value)
                            .where(T["dispatch.extracted_entities"].c.id == late)).scalar() == "joined meanwhile"
