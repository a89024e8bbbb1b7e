"""The platform's own figures over a window (`--since 7d`), on both dialects.

The seeds' views look back a fixed span (voice.error_rate_by_type 7 days, conversation_success_rate
and slot_extraction_accuracy 30 days) or over all time (chattrain.scenario_performance,
session_summary). When the window asked for is the view's, the figure is read from the view;
otherwise the same figure is computed over the view's base table with the window, and each
figure's ``source`` says which was used.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from tdbctl.schema import metadata

VIEW_WINDOWS = {
    "voice.conversation_success_rate": timedelta(days=30),
    "voice.error_rate_by_type": timedelta(days=7),
    "voice.slot_extraction_accuracy": timedelta(days=30),
}


def gather(conn, since: timedelta, now: datetime) -> dict:
    present = _present_tables(conn)
    window = _Window(since, now)
    conversations = _conversations(conn, window, present)
    return {
        "conversations": conversations,
        "errors_by_type": _errors(conn, window, present, conversations),
        "slot_extraction": _slots(conn, window, present),
        "training_sessions": _training(conn, window, present),
    }


class _Window:
    def __init__(self, since: timedelta, now: datetime):
        self.since = since
        self.start = now - since

    def on(self, column: sa.Column):
        """The window's start, typed like the column (timestamps without zone hold UTC)."""
        start = self.start if column.type.timezone else self.start.replace(tzinfo=None)
        return column >= start

    def source(self, view: str, base: str) -> tuple[bool, str]:
        if VIEW_WINDOWS.get(view) == self.since:
            return True, f"view {view}"
        days = VIEW_WINDOWS[view].days
        return False, f"table {base} (the view {view} looks back a fixed {days} days)"


def _present_tables(conn) -> set[str]:
    inspector = sa.inspect(conn)
    schemas = set(inspector.get_schema_names())
    present = set()
    for schema in ("voice", "chattrain"):
        if schema in schemas:
            present |= {f"{schema}.{t}" for t in inspector.get_table_names(schema=schema)}
            present |= {f"{schema}.{v}" for v in inspector.get_view_names(schema=schema)}
    return present


def _count_if(condition) -> sa.ColumnElement:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _ratio(part, whole, digits: int = 4):
    return round(float(part) / float(whole), digits) if whole else None


def _conversations(conn, window: _Window, present: set[str]) -> dict | None:
    view = "voice.conversation_success_rate"
    if "voice.conversations" not in present:
        return None
    use_view, source = window.source(view, "voice.conversations")
    if use_view and view in present:
        rows = conn.execute(sa.text(f"SELECT success_rate, total_conversations FROM {view}")).all()
        total = sum(int(n) for _rate, n in rows)
        completed = sum(round(float(rate) * int(n) / 100) for rate, n in rows)
    else:
        c = metadata.tables["voice.conversations"].c
        total, completed = conn.execute(
            sa.select(sa.func.count(), _count_if(c.status == "completed")).where(window.on(c.started_at))
        ).one()
    return {"source": source, "total": int(total), "completed": int(completed),
            "success_rate": _ratio(completed, total)}


def _errors(conn, window: _Window, present: set[str], conversations: dict | None) -> dict | None:
    view = "voice.error_rate_by_type"
    if "voice.error_logs" not in present:
        return None
    use_view, source = window.source(view, "voice.error_logs")
    if use_view and view in present:
        rows = conn.execute(sa.text(f"SELECT error_type, error_count, critical_count FROM {view}")).all()
    else:
        c = metadata.tables["voice.error_logs"].c
        rows = conn.execute(
            sa.select(c.error_type, sa.func.count(), _count_if(c.severity == "critical"))
            .where(window.on(c.created_at)).group_by(c.error_type)
        ).all()
    total_conversations = conversations["total"] if conversations else 0
    types = [
        {"error_type": kind, "errors": int(n), "critical": int(critical),
         "per_100_conversations": round(100.0 * int(n) / total_conversations, 2) if total_conversations else None}
        for kind, n, critical in sorted(rows, key=lambda r: (-int(r[1]), r[0]))
    ]
    return {"source": source, "total": sum(t["errors"] for t in types), "types": types}


def _slots(conn, window: _Window, present: set[str]) -> dict | None:
    view = "voice.slot_extraction_accuracy"
    if "voice.extracted_slots" not in present:
        return None
    use_view, source = window.source(view, "voice.extracted_slots")
    if use_view and view in present:
        rows = conn.execute(sa.text(
            f"SELECT slot_name, avg_confidence, total_extractions, validated_count FROM {view}")).all()
    else:
        c = metadata.tables["voice.extracted_slots"].c
        rows = conn.execute(
            sa.select(c.slot_name, sa.func.avg(c.confidence_score), sa.func.count(),
                      _count_if(c.validated == sa.true()))
            .where(window.on(c.created_at)).group_by(c.slot_name)
        ).all()
    return {"source": source, "slots": [
        {"slot_name": name, "extractions": int(n), "validated": int(validated),
         "validated_ratio": _ratio(validated, n),
         "avg_confidence": round(float(confidence), 4) if confidence is not None else None}
        for name, confidence, n, validated in sorted(rows, key=lambda r: r[0])
    ]}


def _training(conn, window: _Window, present: set[str]) -> dict | None:
    if not {"chattrain.sessions", "chattrain.feedback", "chattrain.scenarios"} <= present:
        return None
    sessions = metadata.tables["chattrain.sessions"]
    feedback = metadata.tables["chattrain.feedback"]
    scenarios = metadata.tables["chattrain.scenarios"]
    in_window = window.on(sessions.c.started_at)
    counts = (
        sa.select(sessions.c.scenario_id, sa.func.count().label("n"),
                  _count_if(sessions.c.status == "completed").label("done"))
        .where(in_window).group_by(sessions.c.scenario_id).subquery()
    )
    scores = (
        sa.select(sessions.c.scenario_id, sa.func.avg(feedback.c.score).label("score"),
                  sa.func.sum(feedback.c.score).label("score_sum"), sa.func.count(feedback.c.score).label("scored"))
        .join(feedback, feedback.c.session_id == sessions.c.id)
        .where(in_window).group_by(sessions.c.scenario_id).subquery()
    )
    rows = conn.execute(
        sa.select(counts.c.scenario_id, scenarios.c.title, counts.c.n, counts.c.done, scores.c.score,
                  scores.c.score_sum, scores.c.scored)
        .join(scenarios, scenarios.c.id == counts.c.scenario_id, isouter=True)
        .join(scores, scores.c.scenario_id == counts.c.scenario_id, isouter=True)
        .order_by(counts.c.scenario_id)
    ).all()
    total = sum(int(r.n) for r in rows)
    completed = sum(int(r.done) for r in rows)
    scored = sum(int(r.scored or 0) for r in rows)
    score_sum = sum(float(r.score_sum or 0) for r in rows)
    return {
        "source": "tables chattrain.sessions, feedback, scenarios (the views chattrain.scenario_performance "
                  "and session_summary cover all time)",
        "total": total, "completed": completed, "completion_rate": _ratio(completed, total),
        "avg_score": round(score_sum / scored, 2) if scored else None,
        "scenarios": [
            {"scenario_id": r.scenario_id, "title": r.title, "sessions": int(r.n), "completed": int(r.done),
             "completion_rate": _ratio(r.done, r.n),
             "avg_score": round(float(r.score), 2) if r.score is not None else None}
            for r in rows
        ],
    }
