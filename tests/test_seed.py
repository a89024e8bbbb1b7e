"""`tdbctl seed`: reference data from seeds/, on real SQLite and PostgreSQL.

Expected values come from the seed documents themselves where they give them (dispatch's five
scenarios and their difficulty, ChatTrain's five system_config rows, 004's personality traits),
and from the seed files otherwise, so an edit to either is caught.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from conftest import run_cli, url_text
from tdbctl.config import resolve
from tdbctl.engine import create_engine
from tdbctl.errors import ExitCode
from tdbctl.migrate.commands import upgrade
from tdbctl.resources import seeds_dir
from tdbctl.schema import metadata
from tdbctl.errors import DatabaseError, NotSetUp
from tdbctl.seed import seed_reference
from tdbctl.seed.spec import DOMAIN_KINDS, SEED_MARKER, STABLE_ID_NAMESPACE

SEED_DOCS = Path(__file__).resolve().parent / "seed_docs"
REFERENCE_TABLES = sorted({k.table for kinds in DOMAIN_KINDS.values() for top in kinds
                           for k in (top, *top.children, *(g for c in top.children for g in c.children))})


def settings_for(url):
    return resolve(url_text(url))


def migrated(url):
    upgrade(settings_for(url), lock_wait=5)
    return url


def fetch(url, statement, params=None) -> list[dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(statement, params or {})]
    finally:
        engine.dispose()


def table_rows(url, name: str) -> list[dict]:
    table = metadata.tables[name]
    return fetch(url, sa.select(table).order_by(*table.primary_key.columns))


def checksum(url, names=REFERENCE_TABLES) -> str:
    digest = hashlib.sha256()
    for name in names:
        for row in table_rows(url, name):
            digest.update(repr(sorted(row.items())).encode())
    return digest.hexdigest()


def seed_file(name: str) -> dict:
    return yaml.safe_load((seeds_dir() / name).read_text())


def copy_seeds(tmp_path) -> Path:
    target = tmp_path / "seeds"
    shutil.copytree(seeds_dir(), target)
    return target


# -- what the seed documents say --------------------------------------------------------------


def seed000_scenarios() -> dict[str, str]:
    text = (SEED_DOCS / "000_9aa2b0bd697859f8.txt").read_text()
    return dict(re.findall(r"^\d\. \*\*(.+?)\*\* \((easy|medium|hard)\)", text, re.M))


def seed003_system_config() -> dict[str, tuple]:
    text = (SEED_DOCS / "003_a62b065dfde43b33.txt").read_text()
    block = text.split("INSERT INTO system_config (key, value, description) VALUES", 1)[1].split(";", 1)[0]
    rows = re.findall(r"\('([^']*)', '([^']*)', '([^']*)'\)", block)
    return {key: (json.loads(value), description) for key, value, description in rows}


def seed004_trait_names() -> set[str]:
    text = (SEED_DOCS / "004_ab3a0f2b71c4fddd.txt").read_text()
    block = text.split("**Personality Traits Structure:**", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return set(json.loads(block))


def test_the_documents_give_what_the_tests_expect():
    # Guards the parsing above: a seed document reworded would otherwise make the tests vacuous.
    assert len(seed000_scenarios()) == 5
    assert len(seed003_system_config()) == 5
    assert len(seed004_trait_names()) == 8


# -- reference rows ---------------------------------------------------------------------------


def test_reference_rows_are_the_seed_documents_rows(db_url):
    migrated(db_url)
    report = seed_reference(settings_for(db_url))
    assert report.changed == sum(1 for c in report.changes) and report.changed > 0

    # dispatch: the five scenarios of seed 000 with their difficulty, ids derived from the names.
    scenarios = table_rows(db_url, "dispatch.training_scenarios")
    assert {r["name"]: r["difficulty_level"] for r in scenarios} == seed000_scenarios()
    written = {s["name"]: s for s in seed_file("dispatch/training_scenarios.yaml")["training_scenarios"]}
    for row in scenarios:
        entry = written[row["name"]]
        assert row["id"] == uuid.uuid5(STABLE_ID_NAMESPACE, f"dispatch.training_scenarios:{row['name']}")
        assert (row["description"], row["caller_profile"], row["scenario_script"], row["is_active"]) == (
            entry["description"], entry["caller_profile"], entry["scenario_script"], True)
        assert {"personality", "background", "emotional_state"} <= set(row["caller_profile"])
        assert {"initial_conditions", "expected_flow"} <= set(row["scenario_script"])
        assert len(row["scenario_script"]["expected_flow"]) >= 5

    # chattrain: seed 003's system_config defaults, exactly, owned by the seed.
    config = {r["key"]: (r["value"], r["description"], r["updated_by"])
              for r in table_rows(db_url, "chattrain.system_config")}
    assert config == {k: (v, d, SEED_MARKER) for k, (v, d) in seed003_system_config().items()}
    (scenario,) = table_rows(db_url, "chattrain.scenarios")
    (entry,) = seed_file("chattrain/scenarios/onboarding.claim_handling.v1.yaml")["scenarios"]
    assert scenario["id"] == "onboarding.claim_handling.v1" and scenario["created_by"] == SEED_MARKER
    for column, value in entry.items():
        assert scenario[column] == value, column
    assert all({"specific", "measurable", "achievable", "relevant", "time_bound"} <= set(g)
               for g in scenario["smart_goals"])

    # academy: the case, its personas with 004's eight traits, scenes and the scene-persona links.
    (case,) = seed_file("academy/scenarios/kilimo_fresh.yaml")["scenarios"]
    (stored,) = table_rows(db_url, "academy.scenarios")
    plain = {k: v for k, v in case.items() if k not in ("personas", "scenes")}
    assert {k: stored[k] for k in plain} == plain and stored["created_by"] is None
    personas = {r["name"]: r for r in table_rows(db_url, "academy.scenario_personas")}
    assert {p["name"]: p for p in case["personas"]} == {
        name: {k: row[k] for k in case["personas"][0]} for name, row in personas.items()}
    for row in personas.values():
        assert set(row["personality_traits"]) == seed004_trait_names()
        assert all(isinstance(v, int) and 0 <= v <= 10 for v in row["personality_traits"].values())
    scenes = {r["scene_order"]: r for r in table_rows(db_url, "academy.scenario_scenes")}
    assert sorted(scenes) == [1, 2, 3, 4, 5]
    for scene in case["scenes"]:
        row = scenes[scene["scene_order"]]
        assert {k: row[k] for k in scene if k != "personas"} == {k: v for k, v in scene.items() if k != "personas"}
        assert row["goal_criteria"] and row["hint_triggers"] and row["scenario_id"] == stored["id"]
    names = {r["id"]: r["name"] for r in personas.values()}
    orders = {r["id"]: r["scene_order"] for r in scenes.values()}
    links = {(orders[r["scene_id"]], names[r["persona_id"]], r["involvement_level"])
             for r in table_rows(db_url, "academy.scene_personas")}
    assert links == {(s["scene_order"], p["persona"], p["involvement_level"])
                     for s in case["scenes"] for p in s["personas"]}


def test_second_run_changes_nothing_and_says_so(db_url, tmp_path):
    migrated(db_url)
    seed_reference(settings_for(db_url))
    before = checksum(db_url)
    again = run_cli("--database-url", url_text(db_url), "seed", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to do: the 34 seed rows already match the seed files" in again.stderr
    assert checksum(db_url) == before  # not even updated_at moved
    report = seed_reference(settings_for(db_url))
    assert {c.action for c in report.changes} == {"unchanged"} and len(report.changes) == 34


def test_dry_run_shows_the_inserts_and_writes_nothing(db_url, tmp_path):
    migrated(db_url)
    result = run_cli("--database-url", url_text(db_url), "seed", "--dry-run", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True
    assert document["tables"]["dispatch.training_scenarios"] == {"insert": 5, "update": 0, "unchanged": 0, "kept": 0}
    assert sum(1 for c in document["changes"] if c["action"] == "insert") == 34
    assert all(table_rows(db_url, name) == [] for name in REFERENCE_TABLES)
    runs = fetch(db_url, sa.text("SELECT command, status, options FROM tdbctl.runs"))
    assert [(r["command"], r["status"]) for r in runs] == [("seed", "dry_run")]


def test_an_edited_file_updates_its_rows_and_never_touches_users_rows(db_url, tmp_path):
    migrated(db_url)
    seeds = copy_seeds(tmp_path)
    seed_reference(settings_for(db_url), seeds_root=seeds)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        # A trainer's own scenario, an administrator's config change, a user's academy scenario
        # that happens to share the seed's title.
        conn.execute(metadata.tables["dispatch.training_scenarios"].insert().values(
            id=uuid.uuid4(), name="Our own drill", description="d", caller_profile={}, scenario_script={},
            difficulty_level="easy"))
        conn.execute(sa.update(metadata.tables["chattrain.system_config"])
                     .where(sa.column("key") == "vector_search_k").values(value=5, updated_by="alice"))
        conn.execute(metadata.tables["academy.users"].insert().values(
            id=900, email="t@example.org", username="teacher", password_hash="x"))
        conn.execute(metadata.tables["academy.scenarios"].insert().values(
            title="Kilimo Fresh: losing the seasonal contract", description="mine", created_by=900))
    engine.dispose()

    path = seeds / "dispatch" / "training_scenarios.yaml"
    document = yaml.safe_load(path.read_text())
    car = next(s for s in document["training_scenarios"] if s["name"] == "Car Accident - Minor Injuries")
    car["description"] = "A calm witness reports a collision (edited)."
    car["difficulty_level"] = "medium"
    document["training_scenarios"] = [s for s in document["training_scenarios"] if s["name"] != "Burglary in Progress"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    config_path = seeds / "chattrain" / "system_config.yaml"
    config = yaml.safe_load(config_path.read_text())
    for item in config["system_config"]:
        item["value"] = {"session_timeout_minutes": 45, "vector_search_k": 4}.get(item["key"], item["value"])
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    report = seed_reference(settings_for(db_url), seeds_root=seeds)
    changed = {(c.table, c.entry.rsplit(" ", 1)[-1].strip('"'), c.action, tuple(sorted(c.columns)))
               for c in report.changes if c.action != "unchanged"}
    assert changed == {
        ("dispatch.training_scenarios", "Injuries", "update", ("description", "difficulty_level")),
        ("chattrain.system_config", "session_timeout_minutes", "update", ("value",)),
        ("chattrain.system_config", "vector_search_k", "kept", ()),
    }
    rows = {r["name"]: r for r in table_rows(db_url, "dispatch.training_scenarios")}
    assert rows["Car Accident - Minor Injuries"]["description"] == "A calm witness reports a collision (edited)."
    assert rows["Car Accident - Minor Injuries"]["difficulty_level"] == "medium"
    assert {"Burglary in Progress", "Our own drill"} <= set(rows)  # removed from the file, still here
    config_rows = {r["key"]: (r["value"], r["updated_by"]) for r in table_rows(db_url, "chattrain.system_config")}
    assert config_rows["session_timeout_minutes"] == (45, SEED_MARKER)
    assert config_rows["vector_search_k"] == (5, "alice")
    academy = {(r["created_by"], r["description"]) for r in table_rows(db_url, "academy.scenarios")}
    assert (900, "mine") in academy and len(academy) == 2


# -- bad files ----------------------------------------------------------------------------------


def _break_unknown_column(seeds: Path) -> str:
    path = seeds / "dispatch" / "training_scenarios.yaml"
    path.write_text(path.read_text().replace("    is_active: true\n", "    is_active: true\n    colour: red\n", 3))
    return ("seeds/dispatch/training_scenarios.yaml: training_scenarios[0] \"Domestic Violence Call\": "
            "unknown column 'colour' for dispatch.training_scenarios")


def _break_type(seeds: Path) -> str:
    path = seeds / "chattrain" / "scenarios" / "onboarding.claim_handling.v1.yaml"
    path.write_text(path.read_text().replace("    version: 1.0.0\n", "    version: 1.0\n"))
    return ("seeds/chattrain/scenarios/onboarding.claim_handling.v1.yaml: scenarios[0] "
            "\"onboarding.claim_handling.v1\": column 'version': expected text, got a number (1.0); "
            "put it in quotes to make it text")


def _break_yaml(seeds: Path) -> str:
    path = seeds / "academy" / "scenarios" / "kilimo_fresh.yaml"
    lines = path.read_text().splitlines()
    lines[30] = lines[30] + " ]"
    path.write_text("\n".join(lines) + "\n")
    return "seeds/academy/scenarios/kilimo_fresh.yaml: not valid YAML: line 31"


@pytest.mark.parametrize("breakage", [_break_unknown_column, _break_type, _break_yaml])
def test_a_bad_file_changes_nothing_and_names_file_and_entry(db_url, tmp_path, breakage):
    migrated(db_url)
    seeds = copy_seeds(tmp_path)
    expected = breakage(seeds)
    result = run_cli("--database-url", url_text(db_url), "seed", "--seeds-dir", seeds, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"tdbctl: error: {expected}"), result.stderr
    assert all(table_rows(db_url, name) == [] for name in REFERENCE_TABLES)


def test_an_entry_the_database_refuses_rolls_back_its_whole_domain(db_url, tmp_path):
    migrated(db_url)
    seeds = copy_seeds(tmp_path)
    path = seeds / "chattrain" / "scenarios" / "onboarding.claim_handling.v1.yaml"
    document = yaml.safe_load(path.read_text())
    second = dict(document["scenarios"][0], id="onboarding.claim_handling.v2", difficulty="expert")
    document["scenarios"].append(second)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(DatabaseError) as caught:  # the database's answer: exit 1, not a usage error
        seed_reference(settings_for(db_url), seeds_root=seeds)
    message = caught.value.message
    assert caught.value.exit_code == 1
    assert message.startswith("seeds/chattrain/scenarios/onboarding.claim_handling.v1.yaml: scenarios[1] "
                              "\"onboarding.claim_handling.v2\": the database refused the row for chattrain.scenarios")
    assert "chk_difficulty" in message and "\n" not in message
    # The first scenario of the same file went in before the refusal: rolled back with it.
    assert table_rows(db_url, "chattrain.scenarios") == [] and table_rows(db_url, "chattrain.system_config") == []
    # Domains before it are committed, each in its own transaction.
    assert len(table_rows(db_url, "dispatch.training_scenarios")) == 5
    runs = fetch(db_url, sa.text("SELECT status, message FROM tdbctl.runs"))
    assert [r["status"] for r in runs] == ["failed"] and runs[0]["message"] == message


# -- refusal before migrate ---------------------------------------------------------------------


def test_refuses_a_database_that_is_not_at_head(db_url, tmp_path):
    with pytest.raises(NotSetUp, match=r"tdbctl migrate"):
        seed_reference(settings_for(db_url))
    upgrade(settings_for(db_url), "0004", lock_wait=5)
    result = run_cli("--database-url", url_text(db_url), "seed", cwd=tmp_path)
    assert result.returncode == ExitCode.NOT_SET_UP == 7
    assert re.fullmatch(r"tdbctl: error: the database is at revision 0004, this tdbctl's head is \d+: "
                        r"run `tdbctl migrate` first\n", result.stderr), result.stderr
    assert table_rows(db_url, "dispatch.training_scenarios") == []


def test_unknown_domain_is_a_usage_error(sqlite_url, tmp_path):
    result = run_cli("--database-url", url_text(sqlite_url), "seed", "--domain", "billing", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert "unknown domain 'billing' (domains: dispatch, voice, academy, chattrain)" in result.stderr


def test_one_domain_only(sqlite_url):
    migrated(sqlite_url)
    report = seed_reference(settings_for(sqlite_url), domains=["chattrain"])
    assert {c.table for c in report.changes} == {"chattrain.scenarios", "chattrain.system_config"}
    assert table_rows(sqlite_url, "dispatch.training_scenarios") == []
