"""Synthetic academy learners working through the case studies: users, progress, scene progress,
conversation logs, agent memory and sessions, summaries, cache entries, embeddings, reviews.

Markers: users' username starts with ``synthetic-`` (everything hanging off a synthetic user is
synthetic), session_memory.session_id ``synthetic-``, cache keys ``synthetic:``, embeddings'
document_id ``synthetic-``. Integer keys are assigned here (after the largest in the table) so
children can point at their parents within one COPY stream; sequences are moved past them.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from tdbctl.errors import TdbError
from tdbctl.seed.synthetic.common import DAY, HOUR, MINUTE, SYNTHETIC_JSON, DomainContext, cumulative, vector_pool

STATUS = cumulative({"completed": 0.6, "abandoned": 0.18, "in_progress": 0.17, "not_started": 0.05})
FIRST = ("Amara", "Ben", "Chen", "Diego", "Elif", "Farah", "Grace", "Hugo", "Ines", "Jomo", "Kai", "Lena")
LAST = ("Njoroge", "Smith", "Wang", "Garcia", "Yilmaz", "Haddad", "Mwangi", "Martin", "Silva", "Otieno")
USER_LINES = (
    "What share of your volume did the UK contract represent?",
    "How many months of cash do we have at the current burn rate?",
    "Which of these markets could we enter before the next season?",
    "What would the farmers need to hear from us this month?",
    "Could we phase the processing investment over two years?",
    "I'd propose keeping the Gulf option and delaying the processing plant.",
    "What are the risks if the Gulf importer pays on 90-day terms?",
)
PERSONA_LINES = (
    "Sixty percent of last season's volume went to them. It was our anchor.",
    "At twenty-one million a month in fixed costs, we have four months. Less if we keep everyone.",
    "The Gulf importer could start within six months, but at a lower price per kilo.",
    "The farmers need a planting plan within five weeks, before the rains.",
    "I won't support any plan that drops farmers from the network.",
    "That covers the cash question. What about the covenant test next quarter?",
)
HINTS = ("Ask about the share of volume first.", "Work out the runway from cash and fixed costs.",
         "Compare options on time to revenue, not only size.")
MODELS = ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18")
REACTIONS = ("positive", "neutral", "negative")


class AcademyGenerator:
    domain = "academy"
    marker_table = "academy.users"
    rows_per_session = 63  # about: the largest domain starts first (see synthetic.generate)
    tables = {
        "academy.users": ("id", "email", "full_name", "username", "password_hash", "role", "total_simulations",
                          "is_active", "is_verified", "created_at", "updated_at"),
        "academy.user_progress": ("id", "user_id", "scenario_id", "current_scene_id", "status", "simulation_status",
                                  "started_at", "completed_at", "last_activity", "total_time_spent", "current_turn",
                                  "total_turns", "total_attempts", "hints_used", "forced_progressions",
                                  "session_count", "scenes_completed", "total_scenes", "completion_percentage",
                                  "final_score", "orchestrator_data", "created_at", "updated_at"),
        "academy.scene_progress": ("id", "user_progress_id", "scene_id", "status", "started_at", "completed_at",
                                   "time_spent", "turns_taken", "attempts", "hints_used", "messages_sent",
                                   "ai_responses", "goal_achieved", "forced_progression", "completion_score",
                                   "goal_achievement_score", "interaction_quality", "created_at", "updated_at"),
        "academy.conversation_logs": ("id", "user_progress_id", "scene_id", "message_type", "sender_name",
                                      "message_content", "turn_number", "message_order", "attempt_number",
                                      "persona_id", "is_hint", "ai_context_used", "model_used", "processing_time",
                                      "token_count", "user_reaction", "led_to_progress", "timestamp", "created_at"),
        "academy.session_memory": ("id", "session_id", "user_id", "scenario_id", "scene_id", "memory_type",
                                   "content", "metadata", "importance_score", "access_count", "last_accessed",
                                   "created_at", "updated_at"),
        "academy.conversation_summaries": ("id", "session_id", "user_progress_id", "summary_type", "content",
                                           "key_points", "scene_id", "turn_range_start", "turn_range_end",
                                           "created_at"),
        "academy.agent_sessions": ("id", "session_id", "user_progress_id", "agent_type", "agent_id",
                                   "session_config", "status", "started_at", "last_activity", "total_interactions",
                                   "average_response_time", "error_count", "created_at", "updated_at"),
        "academy.cache_entries": ("id", "cache_key", "content_type", "content_data", "content_text", "metadata",
                                  "ttl_seconds", "access_count", "last_accessed", "created_at", "expires_at"),
        "academy.vector_embeddings": ("id", "content_type", "content_id", "content", "embedding", "metadata",
                                      "collection_name", "document_id", "created_at", "updated_at"),
        "academy.scenario_reviews": ("id", "scenario_id", "reviewer_id", "rating", "title", "review_text", "pros",
                                     "cons", "helpful_votes", "total_votes", "is_verified", "created_at",
                                     "updated_at"),
    }

    def __init__(self, ctx: DomainContext):
        self.ctx = ctx
        self.reviewed: set[tuple[int, int]] = set()
        self.user = None  # (id, created_ms, progress left)

    def prepare(self, conn) -> None:
        from tdbctl.schema import academy as a

        # Only the seed's case studies (no author): the rows are the same in every database.
        scenarios = conn.execute(
            sa.select(a.scenarios.c.id).where(a.scenarios.c.created_by.is_(None)).order_by(a.scenarios.c.id)
            .with_for_update(read=True, key_share=True)
        ).scalars().all()
        scenes = conn.execute(
            sa.select(a.scenario_scenes.c.id, a.scenario_scenes.c.scenario_id, a.scenario_scenes.c.title)
            .where(a.scenario_scenes.c.scenario_id.in_(scenarios))
            .order_by(a.scenario_scenes.c.scenario_id, a.scenario_scenes.c.scene_order)
            .with_for_update(read=True, key_share=True)
        ).all()
        links = conn.execute(
            sa.select(a.scene_personas.c.scene_id, a.scenario_personas.c.id, a.scenario_personas.c.name)
            .join(a.scenario_personas, a.scenario_personas.c.id == a.scene_personas.c.persona_id)
            .where(a.scene_personas.c.scene_id.in_([s.id for s in scenes]))
            .order_by(a.scene_personas.c.scene_id, a.scenario_personas.c.id)
        ).all()
        self.scenes: dict[int, list] = {}
        for scene in scenes:
            self.scenes.setdefault(scene.scenario_id, []).append(scene)
        self.personas: dict[int, list[tuple[int, str]]] = {}
        for link in links:
            # The name goes into JSON text as it is: escape it once here.
            self.personas.setdefault(link.scene_id, []).append((link.id, link.name, json.dumps(link.name)))
        self.scenario_ids = [s for s in scenarios if s in self.scenes]
        if not self.scenario_ids:
            raise TdbError("no academy case study with scenes to simulate: run `tdbctl seed` first")
        self.next_id = {
            name: (conn.execute(sa.select(sa.func.max(a.metadata.tables[name].c.id))).scalar() or 0) + 1
            for name in self.tables
        }
        self.vectors = vector_pool(self.ctx.rng)

    def finish(self, conn, dialect) -> None:
        pass

    def _id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def _user(self, out, index: int) -> tuple[int, int]:
        """The learner for the next simulation: each takes one to five of them."""
        ctx = self.ctx
        if self.user is None or self.user[2] == 0:
            user_id = self._id("academy.users")
            created = ctx.session_window(index, 2 * DAY)
            name = f"{ctx.pick(FIRST)} {ctx.pick(LAST)}"
            out["academy.users"].append((
                user_id, f"synthetic-user-{user_id}@example.invalid", name, f"synthetic-user-{user_id}",
                "!synthetic: no password", "student" if ctx.random() < 0.9 else "user", 0, True,
                ctx.random() < 0.8, created, created,
            ))
            self.user = [user_id, created, ctx.ri(1, 5)]
        self.user[2] -= 1
        return self.user[0], self.user[1]

    def chunk(self, first: int, count: int) -> dict[str, list[tuple]]:
        out = {name: [] for name in self.tables}
        for index in range(first, first + count):
            self._progress(out, index)
        return out

    def _progress(self, out, index: int) -> None:
        ctx = self.ctx
        R, ri, pick, uni = ctx.random, ctx.ri, ctx.pick, ctx.uni
        logs = out["academy.conversation_logs"]
        next_log = self.next_id["academy.conversation_logs"]
        user_id, user_created = self._user(out, index)
        scenario_id = pick(self.scenario_ids)
        scenes = self.scenes[scenario_id]
        status = ctx.pick_weighted(*STATUS)
        if status in ("completed", "not_started"):
            reached = len(scenes) if status == "completed" else 0
        else:
            reached = ri(1, len(scenes))
        # An upper bound of the simulation's length (16 messages of at most 90 s per scene), so
        # that every message falls inside the span.
        duration = reached * 16 * 90_000 + HOUR
        started = max(ctx.session_window(index, duration), user_created + HOUR)
        started = min(started, ctx.plan.end_ms - duration)
        progress_id = self._id("academy.user_progress")
        memory_session = f"synthetic-mem-{progress_id}"
        at, order, turns, hints = started, 0, 0, 0
        done_scenes, messages_total = [], 0
        for position, scene in enumerate(scenes[:reached]):
            finished = position < reached - 1 or status == "completed"
            scene_start = at
            personas = self.personas.get(scene.id) or [(None, "Narrator", '"Narrator"')]
            n = ri(6, 16)
            attempts = 1 + (R() < 0.2)
            scene_hints = 0
            order += 1
            when = at
            logs.append((next_log, progress_id, scene.id, "system", "ChatOrchestrator",
                         f"Scene {position + 1}: {scene.title}", turns, order, attempts, None, False, None, None, None,
                         None, None, False, when, when))
            next_log += 1
            for k in range(n):
                at += ri(15_000, 90_000)
                when = at
                order += 1
                last = finished and k == n - 1
                if k % 2:
                    persona_id, name, quoted = pick(personas)
                    context = (f'{{"system_prompt_version": "2.1", "persona_context": {{"name": {quoted}}}, '
                               f'"scene_context": {{"turn_number": {turns}}}}}')
                    logs.append((next_log, progress_id, scene.id, "ai_persona", name, pick(PERSONA_LINES), turns,
                                 order, attempts, persona_id, False, context, pick(MODELS), uni(0.6, 4.5),
                                 ri(40, 420), None, last, when, when))
                elif R() < 0.08:
                    turns += 1
                    scene_hints += 1
                    logs.append((next_log, progress_id, scene.id, "hint", "ChatOrchestrator", pick(HINTS), turns,
                                 order, attempts, None, True, None, None, None, None, None, last, when, when))
                else:
                    turns += 1
                    logs.append((next_log, progress_id, scene.id, "user", "Learner", pick(USER_LINES), turns, order,
                                 attempts, None, False, None, None, None, None, pick(REACTIONS), last, when, when))
                next_log += 1
            messages_total += n + 1
            hints += scene_hints
            score = uni(0.55, 0.98) if finished else uni(0.1, 0.6)
            scene_status = "completed" if finished else ("failed" if status == "abandoned" and R() < 0.4
                                                          else "in_progress")
            out["academy.scene_progress"].append((
                self._id("academy.scene_progress"), progress_id, scene.id, scene_status, scene_start,
                at if finished else None, (at - scene_start) // 1000, (n + 1) // 2, attempts, scene_hints,
                (n + 1) // 2, n // 2, finished, attempts > 1 and R() < 0.3, score, score, uni(0.4, 1.0),
                scene_start, at))
            if finished:
                done_scenes.append(scene.id)
                out["academy.conversation_summaries"].append((
                    self._id("academy.conversation_summaries"), memory_session, progress_id, "scene_summary",
                    f"The learner completed '{scene.title}' in {n} messages.",
                    '["asked about volume share", "computed runway"]' if n > 10 else '["asked about volume share"]',
                    scene.id, max(turns - (n + 1) // 2, 0), turns, at))
        self.next_id["academy.conversation_logs"] = next_log
        completed = status == "completed"
        last_activity = at
        current_scene = None if status in ("completed", "not_started") else scenes[reached - 1].id
        out["academy.user_progress"].append((
            progress_id, user_id, scenario_id, current_scene,
            {"completed": "completed", "abandoned": "abandoned"}.get(status, "paused" if R() < 0.3 else "in_progress"),
            status, started, last_activity if completed else None, last_activity, (at - started) // 1000, turns,
            turns, len(done_scenes) + (not completed and reached > 0), hints, 0, ri(1, 4),
            "[" + ", ".join(map(str, done_scenes)) + "]", len(scenes), round(100.0 * len(done_scenes) / len(scenes), 1),
            uni(55, 98, 1) if completed else None,
            f'{{"synthetic": true, "current_turn": {turns}, "max_turns": 20, "system_prompt_version": "2.1"}}',
            started, last_activity))
        out["academy.session_memory"].append((
            self._id("academy.session_memory"), memory_session, user_id, scenario_id, current_scene or scenes[0].id,
            "summary", f"Learner progress: {len(done_scenes)} scenes done.", SYNTHETIC_JSON, uni(0.2, 0.9, 2),
            ri(1, 40), last_activity, started, last_activity))
        agents = (("persona", "persona-orchestrator"), ("grading", "grader-v2")) if completed else \
            (("persona", "persona-orchestrator"),)
        for k, (agent_type, agent) in enumerate(agents):
            out["academy.agent_sessions"].append((
                self._id("academy.agent_sessions"), f"synthetic-agent-{progress_id}-{k}", progress_id, agent_type,
                agent, f'{{"synthetic": true, "model": "{pick(MODELS)}"}}',
                "completed" if completed else ("error" if R() < 0.03 else "paused"), started, last_activity,
                messages_total // 2, uni(0.8, 3.5), ri(0, 2), started, last_activity))
        for k in range(2):
            created = started + (at - started) * (k + 1) // 3
            ttl = pick((3600, 86_400, 604_800))
            out["academy.cache_entries"].append((
                self._id("academy.cache_entries"), f"synthetic:{progress_id}:{k}",
                pick(("response", "summary", "embedding")), b"\x00synthetic", "cached orchestrator response",
                SYNTHETIC_JSON, ttl, ri(0, 25), ctx.clamp(created + ri(0, ttl) * 1000), created,
                created + ttl * 1000))
        if index % 25 == 0:
            embedding_id = self._id("academy.vector_embeddings")
            out["academy.vector_embeddings"].append((
                embedding_id, "conversation", progress_id, f"Conversation of simulation {progress_id}",
                pick(self.vectors), SYNTHETIC_JSON, "synthetic", f"synthetic-{embedding_id}", last_activity,
                last_activity))
        if completed and (scenario_id, user_id) not in self.reviewed and R() < 0.3:
            self.reviewed.add((scenario_id, user_id))
            rating = pick((3, 4, 4, 5, 5, 2))
            when = ctx.clamp(at + ri(MINUTE, 2 * DAY))
            out["academy.scenario_reviews"].append((
                self._id("academy.scenario_reviews"), scenario_id, user_id, rating, "Realistic case",
                "The personas pushed back in a realistic way.", '["realistic personas"]',
                '["scene 3 is long"]' if rating < 5 else "[]", ri(0, 12), ri(0, 20), True, when, when))
