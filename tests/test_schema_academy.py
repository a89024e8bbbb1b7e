"""Domain academy (seeds 002 and 004): what either seed names exists, and it behaves.

The expected tables, columns, indexes, constraints and enum types are parsed from the two seed
documents (002's SQL, 004's mermaid ER diagram and bullet lists), so a name the module drops or
misspells fails here. The handful of places where the module deliberately departs from one seed
(docs/_drafts/academy.md) are listed here as exceptions, each with its reason.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_schema_create import build_schema

from tdbctl.engine import create_engine
from tdbctl.schema import academy, metadata
from tdbctl.schema.objects import redundant_seed_indexes_of

SEED_DIR = Path(__file__).resolve().parent / "seed_docs"
SEED_002 = (SEED_DIR / "002_35db4b5a31f6bc9b.txt").read_text()
SEED_004 = (SEED_DIR / "004_ab3a0f2b71c4fddd.txt").read_text()
SCHEMA = "academy"


# --- Parsing the seeds ----------------------------------------------------------------------


def _parse_002_tables() -> dict[str, dict[str, dict]]:
    """002's CREATE TABLE blocks: table -> column -> {type, not_null, default, references}."""
    tables = {}
    for table, body in re.findall(r"^CREATE TABLE (\w+) \((.*?)^\);", SEED_002, re.M | re.S):
        columns = {}
        for line in body.splitlines():
            line = line.split("--")[0].strip().rstrip(",")
            if not line or re.match(r"(PRIMARY KEY|UNIQUE|CHECK)\s*\(", line):
                continue
            name, rest = line.split(None, 1)
            ref = re.search(r"REFERENCES (\w+)\((\w+)\)(?: ON DELETE (\w+))?", rest)
            default = re.search(r"DEFAULT (\S+)", rest)
            columns[name] = {
                "type": re.match(r"(TIMESTAMP WITH TIME ZONE|\w+(?:\(\d+\))?)", rest).group(1),
                "not_null": "NOT NULL" in rest or "PRIMARY KEY" in rest,
                "unique": bool(re.search(r"\bUNIQUE\b", rest)),
                "default": default.group(1) if default else None,
                "references": ref.groups() if ref else None,
            }
        tables[table] = columns
    return tables


def _parse_002_indexes() -> dict[str, tuple[str, list[str], str | None]]:
    """002's CREATE INDEX [CONCURRENTLY]: name -> (table, [column expressions], WHERE)."""
    indexes = {}
    pattern = r"CREATE INDEX (?:CONCURRENTLY )?(\w+) ON (\w+)\(([^)]*)\)(?: WHERE ([^;]+))?;"
    for name, table, cols, where in re.findall(pattern, SEED_002):
        indexes[name] = (table, [c.strip() for c in cols.split(",")], where or None)
    return indexes


def _parse_004_entities() -> dict[str, dict[str, str]]:
    """004's mermaid erDiagram entity blocks: table -> column -> type."""
    tables = {}
    for block in re.findall(r"```mermaid\n(.*?)```", SEED_004, re.S):
        if "erDiagram" not in block:
            continue
        for table, body in re.findall(r"^\s*(\w+) \{\n(.*?)^\s*\}", block, re.M | re.S):
            tables[table] = dict(
                (fields[1], fields[0])
                for fields in (line.split() for line in body.splitlines())
                if len(fields) >= 2 and not fields[0].startswith("%%")
            )
    return tables


def _section(text: str, heading: str) -> str:
    return re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#)", text, re.M | re.S).group(1)


TABLES_002 = _parse_002_tables()
INDEXES_002 = _parse_002_indexes()
TABLES_004 = _parse_004_entities()
# 004's index bullets: name -> description ("GIN index on tags for search", ...).
INDEXES_004 = dict(re.findall(r"^- `(idx_\w+)` - (.*)$", SEED_004, re.M))
ENUMS_004 = {
    name: re.findall(r"'(\w+)'", values)
    for name, values in re.findall(r"^- `(\w+)` - ENUM \(([^)]*)\)", SEED_004, re.M)
}
CHECKS_004 = [
    (table, column, float(lo), float(hi))
    for table, column, lo, hi in re.findall(
        r"^- `(\w+)\.(\w+)` - Between ([\d.]+) and ([\d.]+)", _section(SEED_004, "Check Constraints"), re.M
    )
]
UNIQUE_004 = re.findall(r"^- `(\w+)\.(\w+)` -", _section(SEED_004, "Unique Constraints"), re.M)
COMPOSITE_UNIQUE_004 = [
    (table, [c.strip() for c in cols.split(",")])
    for table, cols in re.findall(r"^- `(\w+)\(([\w, ]+)\)` -", _section(SEED_004, "Unique Constraints"), re.M)
]

ALL_TABLES = set(TABLES_002) | set(TABLES_004)
ALL_COLUMNS = sorted(
    {(t, c) for t, cols in TABLES_002.items() for c in cols} | {(t, c) for t, cols in TABLES_004.items() for c in cols}
)


def _is_postgresql_only(description: str) -> bool:
    return bool(re.search(r"\bGIN\b|trigram", description, re.I))


# Where one index name has two definitions, 004's wins (docs/_drafts/academy.md): 002 indexes
# user_progress.status, 004 "simulation status".
INDEX_COLUMNS_FROM_004 = {
    "idx_user_progress_status": ["simulation_status"],
    "idx_user_progress_user_status": ["user_id", "simulation_status"],
}
# 002's bare references into a scenario's own scenes and personas are SET NULL, not NO ACTION:
# with NO ACTION PostgreSQL refuses to delete a scenario that has conversation logs.
ONDELETE_SET_NULL = {
    ("user_progress", "current_scene_id"),
    ("conversation_logs", "persona_id"),
    ("session_memory", "scene_id"),
    ("conversation_summaries", "scene_id"),
}
# 004's custom types and the columns that carry them.
ENUM_COLUMNS = {
    ("users", "role"): "user_role",
    ("user_progress", "simulation_status"): "simulation_status",
    ("scene_progress", "status"): "scene_status",
    ("conversation_logs", "message_type"): "message_type",
    ("scenarios", "source_type"): "source_type",
}
# Seed type -> PostgreSQL's format_type() of the column. 004's type wins where both give one.
PG_TYPES = {
    "SERIAL": "integer",
    "INTEGER": "integer",
    "integer": "integer",
    "FLOAT": "double precision",
    "float": "double precision",
    "BOOLEAN": "boolean",
    "boolean": "boolean",
    "JSONB": "jsonb",
    "jsonb": "jsonb",
    "TEXT": "text",
    "text": "text",
    "VARCHAR": "character varying",
    "string": "character varying",
    "BYTEA": "bytea",
    "VECTOR(1536)": "vector(1536)",
    # 004's mermaid "timestamp" is the diagram's generic label; 002 spells out WITH TIME ZONE.
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "timestamp": "timestamp with time zone",
}


# --- Fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def engine(db_url):
    engine = create_engine(db_url)
    build_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url):
    engine = create_engine(pg_url)
    build_schema(engine)
    yield engine
    engine.dispose()


def _indexes(engine) -> dict[str, tuple[str, dict]]:
    inspector = sa.inspect(engine)
    return {
        index["name"]: (table, index)
        for table in inspector.get_table_names(schema=SCHEMA)
        for index in inspector.get_indexes(table, schema=SCHEMA)
    }


def _pg_indexdef(conn, name: str) -> str:
    return conn.execute(
        sa.text("SELECT indexdef FROM pg_indexes WHERE schemaname = :s AND indexname = :n"), {"s": SCHEMA, "n": name}
    ).scalar_one()


_counter = itertools.count()


def _insert(conn, table: sa.Table, **values) -> int | None:
    """Insert a row with a made-up value for every required column not given; return its id."""
    n = next(_counter)
    for column in table.columns:
        if column.name in values or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and column.autoincrement in (True, "auto") and isinstance(column.type, sa.Integer):
            continue
        if isinstance(column.type, sa.Enum):
            values[column.name] = column.type.enums[0]
        elif isinstance(column.type, sa.Integer):
            values[column.name] = 3
        elif isinstance(column.type, sa.Float):
            values[column.name] = 0.5
        else:
            values[column.name] = f"{column.name}-{n}"
    result = conn.execute(table.insert().values(**values))
    return result.inserted_primary_key[0] if "id" in table.c else None


def _user(conn, **values) -> int:
    return _insert(conn, academy.users, **values)


def _scenario(conn, **values) -> int:
    return _insert(conn, academy.scenarios, created_by=values.pop("created_by", None) or _user(conn), **values)


def _count(conn, table: sa.Table, **where) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    return conn.execute(query).scalar_one()


REJECTED = (sa.exc.IntegrityError, sa.exc.DataError)


# --- (a) Everything the seeds name exists ----------------------------------------------------


def test_seed_parsing_found_what_the_seeds_name():
    # Guards the regexes: an empty result would make the existence checks below vacuous.
    assert len(TABLES_002) == 15 and len(TABLES_004) == 10
    assert ALL_TABLES == {t.name for t in academy.metadata.tables.values() if t.schema == SCHEMA}
    assert len(TABLES_002["users"]) == 17 and len(TABLES_004["scene_progress"]) == 18
    assert TABLES_002["scene_personas"]["scene_id"]["references"] == ("scenario_scenes", "id", "CASCADE")
    assert len(INDEXES_002) == 21 and INDEXES_002["idx_scenarios_public"][2] == "is_public = true"
    assert len(INDEXES_004) == 27 and _is_postgresql_only(INDEXES_004["idx_personas_name_trgm"])
    assert set(ENUMS_004) == {"user_role", "simulation_status", "scene_status", "message_type", "source_type"}
    assert len(CHECKS_004) == 4 and len(UNIQUE_004) == 2 and len(COMPOSITE_UNIQUE_004) == 1


def test_every_seed_table_and_column_exists(engine):
    inspector = sa.inspect(engine)
    assert ALL_TABLES <= set(inspector.get_table_names(schema=SCHEMA))
    built = {t: {c["name"] for c in inspector.get_columns(t, schema=SCHEMA)} for t in ALL_TABLES}
    missing = [f"{t}.{c}" for t, c in ALL_COLUMNS if c not in built[t]]
    assert not missing
    # Nothing beyond the union of the two seeds.
    extra = [f"{t}.{c}" for t in ALL_TABLES for c in built[t] if (t, c) not in set(ALL_COLUMNS)]
    assert not extra


def test_columns_have_the_seed_types_on_postgresql(pg_engine):
    with pg_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
            ),
            {"s": SCHEMA},
        ).all()
    actual = {(t, c): f for t, c, f in rows}
    wrong = {}
    for table, column in ALL_COLUMNS:
        seed_type = TABLES_004.get(table, {}).get(column) or TABLES_002[table][column]["type"]
        expected = PG_TYPES[seed_type]
        if (table, column) in ENUM_COLUMNS:
            expected = f"{SCHEMA}.{ENUM_COLUMNS[table, column]}"
        if actual[table, column] != expected:
            wrong[f"{table}.{column}"] = (seed_type, actual[table, column])
    assert not wrong
    # The one true type conflict: 002's INTEGER count, 004's JSONB array. 004 wins.
    assert TABLES_002["user_progress"]["scenes_completed"]["type"] == "INTEGER"
    assert actual["user_progress", "scenes_completed"] == "jsonb"


def test_not_null_primary_keys_and_defaults_follow_002(engine):
    inspector = sa.inspect(engine)
    for table, columns in TABLES_002.items():
        built = {c["name"]: c for c in inspector.get_columns(table, schema=SCHEMA)}
        for name, spec in columns.items():
            if spec["not_null"]:
                assert built[name]["nullable"] is False, f"{table}.{name}"
            if spec["default"] is not None:
                assert built[name]["default"] is not None, f"{table}.{name}"
    pk = inspector.get_pk_constraint("scene_personas", schema=SCHEMA)
    assert pk["constrained_columns"] == ["scene_id", "persona_id"]


def test_foreign_keys_delete_as_002_writes_them(engine):
    inspector = sa.inspect(engine)
    expected = {
        (table, column): ref
        for table, columns in TABLES_002.items()
        for column, spec in columns.items()
        if (ref := spec["references"])
    }
    assert len(expected) == 22
    for key in ONDELETE_SET_NULL:
        assert expected[key][2] is None
        expected[key] = (*expected[key][:2], "SET NULL")
    built = {}
    for table in ALL_TABLES:
        for fk in inspector.get_foreign_keys(table, schema=SCHEMA):
            (column,) = fk["constrained_columns"]
            ondelete = (fk["options"].get("ondelete") or "").upper() or None
            built[table, column] = (fk["referred_table"], fk["referred_columns"][0], ondelete)
    assert built == expected


def test_every_seed_index_exists(engine):
    postgresql = engine.dialect.name == "postgresql"
    built = _indexes(engine)
    redundant = {name.split(".", 1)[1]: kept.split(".", 1)[1]
                 for name, kept in redundant_seed_indexes_of(metadata).items() if name.startswith("academy.")}
    assert len(redundant) == 5 and not set(redundant) & set(built)
    for name, (table, columns, _where) in INDEXES_002.items():
        expected = INDEX_COLUMNS_FROM_004.get(name) or [c.split()[0] for c in columns]
        name = redundant.get(name, name)  # dropped as redundant: the index kept has its key
        assert name in built, name
        assert built[name][0] == table, name
        assert built[name][1]["column_names"] == expected, name
    for name, description in INDEXES_004.items():
        if _is_postgresql_only(description) and not postgresql:
            assert name not in built, name
        else:
            assert name in built, name
    # 004's unique indexes carry the UNIQUE rule of users.email and users.username.
    for table, column in UNIQUE_004:
        assert built[f"idx_{table}_{column}"][1]["unique"], column


def test_postgresql_index_definitions(pg_engine):
    with pg_engine.connect() as conn:
        public = _pg_indexdef(conn, "idx_scenarios_public")
        assert "(is_public)" in public and "WHERE (is_public = true)" in public
        assert "(rating_avg)" in _pg_indexdef(conn, "idx_scenarios_rating_avg")  # also read backwards
        assert "(is_public, rating_avg DESC)" in _pg_indexdef(conn, "idx_scenarios_public_rating")
        assert "USING gin (tags)" in _pg_indexdef(conn, "idx_scenarios_tags")
        assert "USING gin (name gin_trgm_ops)" in _pg_indexdef(conn, "idx_personas_name_trgm")
        assert "USING gin (title gin_trgm_ops)" in _pg_indexdef(conn, "idx_scenarios_title_trgm")
        vector_index = _pg_indexdef(conn, "idx_vector_embeddings_embedding")
        assert "USING hnsw (embedding vector_cosine_ops)" in vector_index


def test_partial_index_on_sqlite(sqlite_url):
    engine = create_engine(sqlite_url)
    build_schema(engine)
    with engine.connect() as conn:
        sql = conn.exec_driver_sql(
            f"SELECT sql FROM {SCHEMA}.sqlite_master WHERE type = 'index' AND name = 'idx_scenarios_public'"
        ).scalar_one()
    engine.dispose()
    assert re.search(r"WHERE is_public = (1|true)", sql)


def test_enum_types_exist_on_postgresql_with_004s_values(pg_engine):
    with pg_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "JOIN pg_enum e ON e.enumtypid = t.oid WHERE n.nspname = :s ORDER BY t.typname, e.enumsortorder"
            ),
            {"s": SCHEMA},
        ).all()
    built = {}
    for name, label in rows:
        built.setdefault(name, []).append(label)
    assert built == ENUMS_004


def test_check_constraints_have_postgresql_default_names(engine):
    inspector = sa.inspect(engine)
    for table, column, _lo, _hi in CHECKS_004:
        names = {c["name"] for c in inspector.get_check_constraints(table, schema=SCHEMA)}
        assert f"{table}_{column}_check" in names


# --- (b) Behaviour ---------------------------------------------------------------------------


def test_deleting_a_scenario_cascades_to_its_dependents(engine):
    t = academy
    with engine.begin() as conn:
        user = _user(conn)
        scenario = _scenario(conn, created_by=user)
        persona = _insert(conn, t.scenario_personas, scenario_id=scenario)
        scene = _insert(conn, t.scenario_scenes, scenario_id=scenario, scene_order=1)
        _insert(conn, t.scene_personas, scene_id=scene, persona_id=persona)
        progress = _insert(conn, t.user_progress, user_id=user, scenario_id=scenario, current_scene_id=scene)
        _insert(conn, t.scene_progress, user_progress_id=progress, scene_id=scene)
        _insert(conn, t.conversation_logs, user_progress_id=progress, scene_id=scene, persona_id=persona)
        _insert(conn, t.session_memory, user_id=user, scenario_id=scenario, scene_id=scene)
        _insert(conn, t.conversation_summaries, user_progress_id=progress, scene_id=scene)
        _insert(conn, t.agent_sessions, user_progress_id=progress)
        _insert(conn, t.scenario_files, scenario_id=scenario)
        _insert(conn, t.scenario_reviews, scenario_id=scenario, reviewer_id=user, rating=4)
    with engine.begin() as conn:
        conn.execute(t.scenarios.delete().where(t.scenarios.c.id == scenario))
    with engine.begin() as conn:
        for table in (
            t.scenario_personas, t.scenario_scenes, t.scene_personas, t.user_progress, t.scene_progress,
            t.conversation_logs, t.session_memory, t.conversation_summaries, t.agent_sessions,
            t.scenario_files, t.scenario_reviews,
        ):
            assert _count(conn, table) == 0, table.name
        assert _count(conn, t.users) == 1


def test_references_that_do_not_cascade(engine):
    t = academy
    with engine.begin() as conn:
        author = _user(conn)
        learner = _user(conn)
        scenario = _scenario(conn, created_by=author)
        persona = _insert(conn, t.scenario_personas, scenario_id=scenario)
        scene = _insert(conn, t.scenario_scenes, scenario_id=scenario, scene_order=1)
        progress = _insert(conn, t.user_progress, user_id=learner, scenario_id=scenario, current_scene_id=scene)
        log = _insert(conn, t.conversation_logs, user_progress_id=progress, persona_id=persona)
    # 002 writes no ON DELETE on scenarios.created_by: an author of scenarios cannot be deleted.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(t.users.delete().where(t.users.c.id == author))
    # Removing one scene or persona keeps the learner's progress and logs, unlinked.
    with engine.begin() as conn:
        conn.execute(t.scenario_scenes.delete().where(t.scenario_scenes.c.id == scene))
        conn.execute(t.scenario_personas.delete().where(t.scenario_personas.c.id == persona))
        current = conn.execute(sa.select(t.user_progress.c.current_scene_id).where(t.user_progress.c.id == progress))
        assert current.scalar_one() is None
        speaker = conn.execute(sa.select(t.conversation_logs.c.persona_id).where(t.conversation_logs.c.id == log))
        assert speaker.scalar_one() is None
    # A learner's own rows are dependents: they go with the user.
    with engine.begin() as conn:
        conn.execute(t.users.delete().where(t.users.c.id == learner))
        assert _count(conn, t.user_progress) == 0 and _count(conn, t.conversation_logs) == 0


def test_one_review_per_user_per_scenario(engine):
    ((table, columns),) = COMPOSITE_UNIQUE_004
    assert (table, columns) == ("scenario_reviews", ["scenario_id", "reviewer_id"])
    with engine.begin() as conn:
        user = _user(conn)
        scenario = _scenario(conn)
        _insert(conn, academy.scenario_reviews, scenario_id=scenario, reviewer_id=user, rating=5)
        _insert(conn, academy.scenario_reviews, scenario_id=scenario, reviewer_id=_user(conn), rating=5)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _insert(conn, academy.scenario_reviews, scenario_id=scenario, reviewer_id=user, rating=1)


@pytest.mark.parametrize(
    ("table", "column"),
    sorted(set(UNIQUE_004) | {(t, c) for t, cols in TABLES_002.items() for c, spec in cols.items() if spec["unique"]}),
)
def test_unique_columns_reject_duplicates(engine, table, column):
    target = academy.metadata.tables[f"{SCHEMA}.{table}"]
    with engine.begin() as conn:
        _insert(conn, target, **{column: "same"})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _insert(conn, target, **{column: "same"})


@pytest.mark.parametrize(("table", "column", "lo", "hi"), CHECKS_004)
def test_range_checks_from_004(engine, table, column, lo, hi):
    target = academy.metadata.tables[f"{SCHEMA}.{table}"]
    with engine.begin() as conn:
        _insert(conn, target, **{column: lo})
        _insert(conn, target, **{column: hi})
    for bad in (lo - 0.5, hi + 0.5):
        if isinstance(target.c[column].type, sa.Integer):
            bad = int(bad + 0.5) if bad > hi else int(bad - 0.5)
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            _insert(conn, target, **{column: bad})


def test_rating_6_and_reputation_7_5_are_rejected(engine):
    with engine.begin() as conn:
        user = _user(conn)
        scenario = _scenario(conn)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _insert(conn, academy.scenario_reviews, scenario_id=scenario, reviewer_id=user, rating=6)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _user(conn, reputation_score=7.5)


def test_server_defaults_are_filled(engine):
    t = academy
    with engine.begin() as conn:
        conn.execute(t.users.insert().values(email="a@example.org", username="a", password_hash="x"))
        user = conn.execute(sa.select(t.users)).mappings().one()
        scenario = conn.execute(sa.select(t.scenarios).where(t.scenarios.c.id == _scenario(conn))).mappings().one()
        progress = _insert(conn, t.user_progress)
        progress = conn.execute(sa.select(t.user_progress).where(t.user_progress.c.id == progress)).mappings().one()
        scene = _insert(conn, t.scene_progress)
        scene = conn.execute(sa.select(t.scene_progress).where(t.scene_progress.c.id == scene)).mappings().one()
    assert user["role"] == "user"
    assert user["is_active"] is True and user["profile_public"] is True and user["is_verified"] is False
    assert user["reputation_score"] == 0.0 and user["published_scenarios"] == 0
    assert isinstance(user["created_at"], datetime) and isinstance(user["updated_at"], datetime)
    if engine.dialect.name == "postgresql":
        assert abs(user["created_at"] - datetime.now(timezone.utc)).total_seconds() < 60
    assert scenario["source_type"] == "manual" and scenario["processing_version"] == "1.0"
    assert scenario["is_public"] is False and scenario["allow_remixes"] is True
    assert progress["simulation_status"] == "in_progress" and progress["status"] == "in_progress"
    assert progress["scenes_completed"] == [] and progress["completion_percentage"] == 0.0
    assert scene["status"] == "not_started" and scene["goal_achieved"] is False


@pytest.mark.parametrize(
    ("table", "column", "accepted", "rejected"),
    [
        # 004's value sets, not 002's comments.
        ("conversation_logs", "message_type", "hint", "user_message"),
        ("scene_progress", "status", "failed", "skipped"),
        ("users", "role", "teacher", "superuser"),
        ("scenarios", "source_type", "pdf_upload", "upload"),
        ("user_progress", "simulation_status", "not_started", "paused"),
    ],
)
def test_enum_columns_accept_only_004s_values(engine, table, column, accepted, rejected):
    target = academy.metadata.tables[f"{SCHEMA}.{table}"]
    with engine.begin() as conn:
        _insert(conn, target, **{column: accepted})
    with pytest.raises(REJECTED), engine.begin() as conn:
        # Bypasses SQLAlchemy's own Enum validation, so that the database is what refuses.
        conn.execute(
            sa.text(f"INSERT INTO {SCHEMA}.{table} ({column}, message_content) VALUES (:v, 'x')")
            if table == "conversation_logs"
            else sa.text(f"INSERT INTO {SCHEMA}.{table} ({column}) VALUES (:v)"),
            {"v": rejected},
        )


def test_user_progress_keeps_002s_status_beside_004s(engine):
    with engine.begin() as conn:
        _insert(conn, academy.user_progress, status="paused", simulation_status="in_progress")
        assert _count(conn, academy.user_progress, status="paused") == 1


def test_vector_column_takes_exactly_1536_dimensions(pg_engine):
    t = academy.vector_embeddings
    with pg_engine.begin() as conn:
        vector = [i / 1536 for i in range(1536)]
        row = _insert(conn, t, embedding=vector)
        stored = conn.execute(sa.select(t.c.embedding).where(t.c.id == row)).scalar_one()
        assert len(stored) == 1536 and abs(float(stored[100]) - 100 / 1536) < 1e-6
    with pytest.raises(sa.exc.DataError), pg_engine.begin() as conn:
        _insert(conn, t, embedding=[0.1, 0.2, 0.3])


def test_cosine_distance_search(pg_engine):
    t = academy.vector_embeddings
    near = [1.0] * 1536
    far = [1.0 if i % 2 else -1.0 for i in range(1536)]
    with pg_engine.begin() as conn:
        ids = {
            name: _insert(conn, t, embedding=vector, collection_name="scenarios", content=name)
            for name, vector in (("near", near), ("far", far))
        }
        rows = conn.execute(
            sa.text(
                f"SELECT id, embedding <=> CAST(:v AS vector) AS distance FROM {SCHEMA}.vector_embeddings "
                "WHERE collection_name = 'scenarios' ORDER BY embedding <=> CAST(:v AS vector) LIMIT 5"
            ),
            {"v": str([0.9] * 1536)},
        ).all()
    assert [r.id for r in rows] == [ids["near"], ids["far"]]
    assert rows[0].distance < 1e-6 and abs(rows[1].distance - 1.0) < 1e-6
