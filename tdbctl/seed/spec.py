"""What a seed file may hold, per domain: its kinds of entries, their tables and natural keys.

A seed file is a mapping of kind names to lists of entries (``training_scenarios: [...]``). An
entry's keys are its table's columns, plus its child kinds (an academy scenario holds its
``personas`` and ``scenes``) and references by name to a sibling entry (a scene's persona link
names the persona). Each entry is upserted on its natural key; a child's key is scoped to its
parent row. Nothing here deletes: an entry removed from a file leaves its row alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable, Mapping

import sqlalchemy as sa

from tdbctl.schema import DOMAINS, metadata

SEED_MARKER = "tdbctl seed"
"""Written into the owner column of rows the seed owns (chattrain's created_by / updated_by)."""

# uuid5 namespace of reference rows with UUID keys: the same seed row gets the same id in every
# database, so synthetic data and exports made from two databases agree.
STABLE_ID_NAMESPACE = uuid.UUID("5c1d7e0a-3b0e-4f4e-9a57-7464626374a1")


@dataclass(frozen=True)
class Ref:
    """An entry field naming another entry of the same enclosing scope (a scene's persona)."""

    field: str
    column: str
    kind: str
    """The kind whose entries it names, looked up in the nearest ancestor entry that has it."""


@dataclass(frozen=True)
class Kind:
    name: str
    table: str
    key: tuple[str, ...]
    """Natural key columns; for a child, within its parent row."""
    parent_column: str | None = None
    children: tuple["Kind", ...] = ()
    refs: tuple[Ref, ...] = ()
    scope: Callable[[sa.Table], sa.ColumnElement[bool]] | None = None
    """Rows the natural key is looked up among (academy: scenarios without an author)."""
    owner: str | None = None
    """Column holding who last wrote the row: rows another writer owns are left alone."""
    stable_id: bool = False
    """UUID primary key derived from the natural key instead of the server's random default."""
    label: str | None = None
    """Field that names an entry in messages; the first key column by default."""

    @property
    def table_object(self) -> sa.Table:
        return metadata.tables[self.table]

    @property
    def label_field(self) -> str:
        return self.label or (self.refs[0].field if self.refs else self.key[0])

    @property
    def managed_columns(self) -> set[str]:
        """Columns tdbctl seed sets itself; a seed file may not."""
        table = self.table_object
        managed = {c.name for c in table.primary_key.columns if c.name not in self.key}
        managed |= {r.column for r in self.refs}
        managed |= {c for c in ("created_at", "updated_at") if c in table.c}
        if self.parent_column:
            managed.add(self.parent_column)
        if self.owner:
            managed.add(self.owner)
        return managed

    def stable_uuid(self, key_values: Mapping[str, object]) -> uuid.UUID:
        text = self.table + ":" + "\x1f".join(str(key_values[k]) for k in self.key)
        return uuid.uuid5(STABLE_ID_NAMESPACE, text)


_scene_persona_links = Kind(
    "personas",
    "academy.scene_personas",
    key=("persona_id",),
    parent_column="scene_id",
    refs=(Ref("persona", "persona_id", "personas"),),
)

DOMAIN_KINDS: Mapping[str, tuple[Kind, ...]] = {
    "dispatch": (Kind("training_scenarios", "dispatch.training_scenarios", key=("name",), stable_id=True),),
    # Voice holds only what calls produce: no reference data (seeds/voice/README.md).
    "voice": (),
    "academy": (
        Kind(
            "scenarios",
            "academy.scenarios",
            key=("title",),
            # Users' scenarios always have an author; the seed's have none, so a user's scenario
            # that happens to share a seed title is never taken for the seed's.
            scope=lambda t: t.c.created_by.is_(None),
            children=(
                Kind("personas", "academy.scenario_personas", key=("name",), parent_column="scenario_id"),
                Kind(
                    "scenes",
                    "academy.scenario_scenes",
                    key=("scene_order",),
                    parent_column="scenario_id",
                    children=(_scene_persona_links,),
                    label="title",
                ),
            ),
        ),
    ),
    "chattrain": (
        # updated_by: an administrator's change to a default is theirs, not the seed's to undo.
        Kind("system_config", "chattrain.system_config", key=("key",), owner="updated_by"),
        Kind("scenarios", "chattrain.scenarios", key=("id",), owner="created_by"),
    ),
}

assert set(DOMAIN_KINDS) == set(DOMAINS), "every domain needs an entry (even an empty one)"


@dataclass
class Entry:
    kind: Kind
    file: str
    where: str
    """Where in the file: ``scenarios[0] "Kilimo Fresh..." > scenes[2] "The call"``."""
    values: dict
    refs: dict = field(default_factory=dict)
    children: list["Entry"] = field(default_factory=list)

    @property
    def label(self) -> str:
        value = self.refs.get(self.kind.label_field, self.values.get(self.kind.label_field))
        return str(value)
