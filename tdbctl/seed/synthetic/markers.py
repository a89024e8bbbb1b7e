"""How synthetic rows are told apart from real ones, table by table, without a schema change.

Each domain's top rows carry a prefix in a natural column (``synthetic-`` user, operator and
session ids, ``synthetic:`` cache keys, ``synthetic/`` document file names) and, where the table
has a JSON metadata column, ``"synthetic": true``. Child rows are synthetic when their parent is.
Prefixes are matched as a range (``>= 'synthetic-' AND < 'synthetic.'``): case-sensitive on both
dialects and able to use the column's index.
"""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa

from tdbctl.schema import metadata

PREFIX = "synthetic-"


def prefixed(column, prefix: str = PREFIX):
    return sa.and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1))


def _t(name: str) -> sa.Table:
    return metadata.tables[name]


def _child_of(parent: str, column: str, parent_key: str = "id") -> Callable[[sa.Table], sa.ColumnElement]:
    def predicate(table: sa.Table):
        parent_table = _t(parent)
        return table.c[column].in_(sa.select(parent_table.c[parent_key]).where(MARKERS[parent](parent_table)))

    return predicate


MARKERS: dict[str, Callable[[sa.Table], sa.ColumnElement]] = {
    "dispatch.call_sessions": lambda t: prefixed(t.c.operator_id),
    "dispatch.call_transcripts": _child_of("dispatch.call_sessions", "session_id"),
    "dispatch.extracted_entities": _child_of("dispatch.call_transcripts", "transcript_id"),
    "dispatch.performance_metrics": _child_of("dispatch.call_sessions", "session_id"),
    "voice.conversations": lambda t: prefixed(t.c.session_id),
    "voice.conversation_turns": _child_of("voice.conversations", "conversation_id"),
    "voice.state_transitions": _child_of("voice.conversations", "conversation_id"),
    "voice.extracted_slots": _child_of("voice.conversations", "conversation_id"),
    "voice.appointments": _child_of("voice.conversations", "conversation_id"),
    "voice.system_metrics": _child_of("voice.conversations", "conversation_id"),
    "voice.error_logs": _child_of("voice.conversations", "conversation_id"),
    "voice.user_feedback": _child_of("voice.conversations", "conversation_id"),
    "academy.users": lambda t: prefixed(t.c.username),
    "academy.user_progress": _child_of("academy.users", "user_id"),
    "academy.scene_progress": _child_of("academy.user_progress", "user_progress_id"),
    "academy.conversation_logs": _child_of("academy.user_progress", "user_progress_id"),
    "academy.conversation_summaries": _child_of("academy.user_progress", "user_progress_id"),
    "academy.agent_sessions": _child_of("academy.user_progress", "user_progress_id"),
    "academy.session_memory": lambda t: prefixed(t.c.session_id),
    "academy.scenario_reviews": _child_of("academy.users", "reviewer_id"),
    "academy.cache_entries": lambda t: prefixed(t.c.cache_key, "synthetic:"),
    "academy.vector_embeddings": lambda t: prefixed(t.c.document_id),
    "chattrain.sessions": lambda t: prefixed(t.c.user_id),
    "chattrain.messages": _child_of("chattrain.sessions", "session_id"),
    "chattrain.feedback": _child_of("chattrain.sessions", "session_id"),
    "chattrain.user_activity_logs": lambda t: prefixed(t.c.user_id),
    "chattrain.documents": lambda t: prefixed(t.c.filename, "synthetic/"),
}


def where_synthetic(qualified: str) -> sa.ColumnElement[bool]:
    table = _t(qualified)
    return MARKERS[qualified](table)


def tables_of(domain: str, *, children_first: bool = False) -> list[str]:
    """The domain's tables that hold synthetic rows, parents first (or children first)."""
    ordered = [t.fullname for t in metadata.sorted_tables if t.fullname in MARKERS and t.schema == domain]
    return list(reversed(ordered)) if children_first else ordered
