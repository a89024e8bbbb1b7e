"""Synthetic ChatTrain trainees: sessions through a scenario's steps, messages, step feedback,
activity logs, and RAG document chunks with embeddings.

Markers: sessions' and activity logs' user_id start with ``synthetic-``; documents' filename with
``synthetic/``; messages and feedback belong to a synthetic session.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from tdbctl.errors import TdbError
from tdbctl.seed.synthetic.common import DAY, MINUTE, SYNTHETIC_JSON, DomainContext, cumulative, vector_pool

# 'created' and 'in_progress' sessions older than a week are what the seed's cleanup job calls
# abandoned; 'abandoned' ones were closed by the application.
STATUS = cumulative({"completed": 0.68, "abandoned": 0.12, "in_progress": 0.1, "created": 0.04, "error": 0.06})
USER_LINES = (
    "Good morning, you're through to claims, my name is Sam. Can I take your policy number?",
    "Thank you. And could you confirm your date of birth?",
    "I'm sorry to hear that. When and where did it happen?",
    "Was anyone else involved, or did anyone see it happen?",
    "Did you report it to the police?",
    "Your policy is comprehensive, so this is covered, with an excess of 250.",
    "You can use one of our partner garages; I'll send you the list today.",
    "Your claim reference is CLM-20931. Is there anything else I can help with?",
)
ASSISTANT_LINES = (
    "Hi, yes, it's MTR-4471902.",
    "It's the 14th of March 1986.",
    "On Saturday around two, in the supermarket car park. Someone hit my bumper.",
    "A man gave me his number, he saw a white van reverse into it.",
    "No, I didn't think I needed to.",
    "Okay. And will I get a courtesy car?",
    "How long will the repair take?",
    "No, that's all, thank you.",
)
COMMENTS = ("Clear identification before discussing the claim.", "Missed asking about witnesses.",
            "Good empathy, but the coverage answer was vague.", "Accurate excess and clear next steps.")
SUGGESTIONS = ("Confirm the date of birth before the policy details", "Ask about witnesses and police report",
               "Quote the excess from the policy summary", "Check the customer understood the next steps")
AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0", "Mozilla/5.0 (Macintosh) Safari/17.5",
          "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
SECTIONS = ("Identification", "Incident details", "Coverage", "Excess", "Repair network", "Courtesy car")


class ChattrainGenerator:
    domain = "chattrain"
    marker_table = "chattrain.sessions"
    rows_per_session = 44  # about: the largest domain starts first (see synthetic.generate)
    tables = {
        "chattrain.sessions": ("id", "scenario_id", "user_id", "status", "current_step_id", "variant",
                               "started_at", "completed_at", "last_activity_at", "completion_reason",
                               "session_data", "metadata"),
        "chattrain.messages": ("id", "session_id", "step_id", "role", "content", "timestamp", "token_count",
                               "response_time_ms", "metadata"),
        "chattrain.feedback": ("id", "session_id", "step_id", "message_id", "evaluation_type", "score", "criteria",
                               "comments", "suggestions", "evaluator_version", "created_at", "metadata"),
        "chattrain.documents": ("id", "scenario_id", "filename", "chunk_index", "content", "content_type",
                                "embedding", "embedding_model", "chunk_metadata", "file_hash", "processed_at",
                                "metadata"),
        "chattrain.user_activity_logs": ("id", "session_id", "user_id", "activity_type", "activity_data",
                                         "timestamp", "ip_address", "user_agent"),
    }

    def __init__(self, ctx: DomainContext):
        self.ctx = ctx
        self.trainees = [f"synthetic-trainee-{i:04d}" for i in range(max(5, ctx.plan.sessions // 4))]

    def prepare(self, conn) -> None:
        from tdbctl.schema.chattrain import scenarios as t

        rows = conn.execute(
            sa.select(t.c.id, t.c.steps, t.c.attachments).where(t.c.status == "active").order_by(t.c.id)
            .with_for_update(read=True, key_share=True)
        ).all()
        self.scenarios = []
        for row in rows:
            steps = [s["id"] for s in row.steps if isinstance(s, dict) and s.get("id")] or ["main"]
            files = [a["filename"] for a in row.attachments or [] if isinstance(a, dict) and a.get("filename")]
            # Ids and file names go into JSON text as they are: a scenario whose names would need
            # escaping is left out of synthetic data rather than escaped row by row.
            if all(json.dumps(text)[1:-1] == text for text in (row.id, *steps, *files)):
                self.scenarios.append((row.id, steps, files or ["handbook.md"]))
        if not self.scenarios:
            raise TdbError("no active chattrain scenario to train on: run `tdbctl seed` first")
        self.scenario_json = {s[0]: json.dumps({"scenario_id": s[0]}) for s in self.scenarios}
        self.vectors = vector_pool(self.ctx.rng)

    def finish(self, conn, dialect) -> None:
        pass

    def chunk(self, first: int, count: int) -> dict[str, list[tuple]]:
        out = {name: [] for name in self.tables}
        if first == 0:
            self._documents(out)
        for index in range(first, first + count):
            self._session(out, index)
        return out

    def _documents(self, out) -> None:
        """The scenarios' attachments, chunked and embedded, processed at the start of the span."""
        ctx = self.ctx
        chunks = max(4, min(200, ctx.plan.sessions // 25))
        for scenario_id, _, files in self.scenarios:
            for filename in files:
                file_hash = f"{ctx.rng.getrandbits(256):064x}"
                processed = ctx.plan.start_ms + ctx.ri(MINUTE, DAY)
                for index in range(chunks):
                    section = SECTIONS[index % len(SECTIONS)]
                    out["chattrain.documents"].append((
                        ctx.uuid(), scenario_id, f"synthetic/{filename}", index,
                        f"## {section}\n\nPart {index + 1} of the {filename} guidance for claims handlers.",
                        "markdown", ctx.pick(self.vectors), "text-embedding-ada-002",
                        f'{{"section": "{section}", "chunk": {index}}}', file_hash, processed, SYNTHETIC_JSON))

    def _session(self, out, index: int) -> None:
        ctx = self.ctx
        R, ri, pick, uuid = ctx.random, ctx.ri, ctx.pick, ctx.uuid
        scenario_id, steps, files = pick(self.scenarios)
        status = ctx.pick_weighted(*STATUS)
        reached = len(steps) if status == "completed" else (0 if status == "created" else ri(1, len(steps)))
        exchanges = [ri(2, 5) for _ in range(reached)]
        duration = sum(exchanges) * 2 * 120_000 + 10 * MINUTE
        recent = status in ("in_progress", "created") and R() < 0.3
        started = ctx.session_window(index, duration, recent=recent)
        session_id, user_id = uuid(), pick(self.trainees)
        ip = f"10.{ri(0, 255)}.{ri(0, 255)}.{ri(1, 254)}"
        agent = pick(AGENTS)
        at = started + ri(1_000, 20_000)
        messages, feedback, logs = out["chattrain.messages"], out["chattrain.feedback"], \
            out["chattrain.user_activity_logs"]
        logs.append((uuid(), session_id, user_id, "session_start", self.scenario_json[scenario_id], started, ip,
                     agent))
        if reached:
            messages.append((uuid(), session_id, steps[0], "system",
                             "You are speaking with Laura Bennett, a policyholder. Begin when ready.", at, 24,
                             None, None))
        scores = {}
        for step, turns in zip(steps, exchanges):
            last_user = None
            step_json = f'{{"step_id": "{step}"}}'
            for k in range(turns):
                at += ri(10_000, 110_000)
                last_user = uuid()
                when = at
                messages.append((last_user, session_id, step, "user", pick(USER_LINES), when, ri(12, 60), None, None))
                if k % 3 == 0:
                    logs.append((uuid(), session_id, user_id, "message_sent", step_json, when, ip, agent))
                at += ri(1_000, 9_000)
                messages.append((uuid(), session_id, step, "assistant", pick(ASSISTANT_LINES), at, ri(20, 180),
                                 ri(400, 6_000), None))
            score = ri(35, 100)
            scores[step] = score
            at += ri(500, 4_000)
            when = at
            comment = pick(COMMENTS)
            messages.append((uuid(), session_id, step, "feedback", f"Step score {score}/100. {comment}", when,
                             ri(30, 90), ri(800, 4_000), f'{{"score": {score}}}'))
            feedback.append((uuid(), session_id, step, last_user, pick(("hybrid", "gpt_judge", "rule_based")), score,
                             f'{{"completeness": {ri(1, 5)}, "empathy": {ri(1, 5)}}}', comment,
                             [pick(SUGGESTIONS) for _ in range(ri(0, 2))], "claims-fnol-2", when, SYNTHETIC_JSON))
            logs.append((uuid(), session_id, user_id, "feedback_received",
                         f'{{"step_id": "{step}", "score": {score}}}', when, ip, agent))
            if R() < 0.15:
                logs.append((uuid(), session_id, user_id, "document_viewed", f'{{"filename": "{pick(files)}"}}', when,
                             ip, agent))
        if status in ("completed", "abandoned", "error"):
            at += ri(1_000, 30_000)
            kind = "error_occurred" if status == "error" else "session_end"
            logs.append((uuid(), session_id, user_id, kind, f'{{"status": "{status}"}}', at, ip, agent))
        reason = {"completed": "time_limit" if R() < 0.08 else "all_steps_finished",
                  "abandoned": "user_exit", "error": "system_error"}.get(status)
        current_step = None if status in ("completed", "created") else steps[reached - 1]
        session_data = "{" + ", ".join(f'"{step}": {score}' for step, score in scores.items()) + "}"
        out["chattrain.sessions"].append((
            session_id, scenario_id, user_id, status, current_step, "A" if R() < 0.5 else "B", started,
            at if status == "completed" else None, at, reason,
            f'{{"scores": {session_data}, "steps_done": {len(scores)}}}', '{"synthetic": true, "client": "web"}'))
