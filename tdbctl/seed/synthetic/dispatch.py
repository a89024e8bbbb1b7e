"""Synthetic 911 training calls: sessions, transcripts, extracted entities, performance metrics.

Marker: operator_id starts with ``synthetic-`` (and ``"synthetic": true`` in the metadata);
transcripts, entities and metrics belong to such a session.
"""

from __future__ import annotations

import sqlalchemy as sa

from tdbctl.errors import TdbError
from tdbctl.seed.synthetic.common import MINUTE, SYNTHETIC_JSON, DomainContext, cumulative

STATUS = cumulative({"completed": 0.82, "terminated": 0.11, "error": 0.04, "active": 0.03})
DURATION_MS = {"completed": (180_000, 720_000), "terminated": (30_000, 240_000), "error": (12_000, 360_000),
               "active": (60_000, 300_000)}
TRANSCRIPTS = {"completed": (24, 60), "terminated": (6, 20), "error": (2, 16), "active": (4, 20)}

OPERATOR_LINES = (
    "911, what is the address of your emergency?",
    "Okay, I'm sending help now. Stay on the line with me.",
    "Is anyone hurt? Tell me exactly what happened.",
    "Are you in a safe place right now?",
    "Can you describe the person? What are they wearing?",
    "Listen carefully, I'm going to tell you what to do.",
    "Help is on the way. Keep talking to me.",
    "Is there a weapon involved?",
    "Stay where you are and keep the door locked.",
    "Is the patient awake? Are they breathing normally?",
    "What is the phone number you're calling from?",
    "Officers are two minutes away.",
)
CALLER_LINES = (
    "Please hurry, he's still outside the door!",
    "It's 1418 Alder Court, apartment 2B.",
    "I don't know, I think he has a knife.",
    "My father collapsed, he's not answering me!",
    "There are two cars, one of the drivers is bleeding.",
    "I heard glass break downstairs, someone is in the house.",
    "Yes, I'm in the bathroom, I locked the door.",
    "He's wearing a black hoodie and jeans.",
    "I think he's breathing but it sounds strange.",
    "We're on the second floor, room 214.",
    "Okay, okay, I'm doing it now.",
    "I can hear sirens.",
)
ENTITIES = (
    ("LOCATION", "1418 Alder Court"), ("LOCATION", "Maple Avenue and 5th Street"), ("LOCATION", "room 214"),
    ("WEAPON", "knife"), ("WEAPON", "broken bottle"), ("WEAPON", "gun"),
    ("INJURY", "bleeding"), ("INJURY", "chest pain"), ("INJURY", "cut on the forehead"),
    ("PERSON", "father"), ("PERSON", "partner"), ("VEHICLE", "dark van"), ("VEHICLE", "silver sedan"),
    ("TIME_REFERENCE", "ten minutes ago"), ("TIME_REFERENCE", "right now"),
)
EMOTIONS = ("calm", "anxious", "panicked", "hysterical")
METRICS = ("response_time", "empathy_score", "protocol_adherence", "information_gathering", "call_control",
           "overall_score")
CHANNELS = ("training_room_a", "training_room_b", "remote")


class DispatchGenerator:
    domain = "dispatch"
    marker_table = "dispatch.call_sessions"
    rows_per_session = 53  # about: the largest domain starts first (see synthetic.generate)
    tables = {
        "dispatch.call_sessions": ("id", "operator_id", "scenario_id", "started_at", "ended_at", "duration_ms",
                                   "status", "metadata", "created_at", "updated_at"),
        "dispatch.call_transcripts": ("id", "session_id", "timestamp_ms", "speaker", "text", "audio_url",
                                      "emotional_state", "confidence_score", "created_at"),
        "dispatch.extracted_entities": ("id", "transcript_id", "session_id", "entity_type", "entity_value", "confidence_score",
                                        "start_char", "end_char", "metadata", "created_at"),
        "dispatch.performance_metrics": ("id", "session_id", "metric_name", "metric_value", "measured_at"),
    }

    def __init__(self, ctx: DomainContext):
        self.ctx = ctx
        self.operators = [f"synthetic-operator-{i:03d}" for i in range(max(3, ctx.plan.sessions // 40))]

    def prepare(self, conn) -> None:
        from tdbctl.schema.dispatch import training_scenarios as t

        rows = conn.execute(
            sa.select(t.c.id, t.c.difficulty_level).where(t.c.is_active.is_(True)).order_by(t.c.name, t.c.id)
        ).all()
        if not rows:
            raise TdbError("no active dispatch training scenarios to make calls for: run `tdbctl seed` first")
        self.scenarios = [(row.id.bytes, row.difficulty_level) for row in rows]

    def finish(self, conn, dialect) -> None:
        pass

    def chunk(self, first: int, count: int) -> dict[str, list[tuple]]:
        ctx = self.ctx
        R, ri, pick, uni, uuid = ctx.random, ctx.ri, ctx.pick, ctx.uni, ctx.uuid
        sessions, transcripts, entities, metrics = [], [], [], []
        for index in range(first, first + count):
            status = ctx.pick_weighted(*STATUS)
            duration = ri(*DURATION_MS[status])
            started = ctx.session_window(index, duration, recent=status == "active")
            scenario_id, difficulty = pick(self.scenarios)
            session_id = uuid()
            session_hex = session_id.hex()
            ended = None if status == "active" else started + duration
            metadata = f'{{"synthetic": true, "channel": "{pick(CHANNELS)}", "difficulty": "{difficulty}"}}'
            sessions.append((session_id, pick(self.operators), scenario_id, started,
                             ended, None if ended is None else duration, status,
                             metadata, started, ended or started))
            n = ri(*TRANSCRIPTS[status])
            offsets = sorted(int(R() * duration) for _ in range(n))
            emotion = ri(0, 3)
            for turn, offset in enumerate(offsets):
                transcript_id = uuid()
                at = started + offset
                if turn % 2 == 0:
                    text, speaker, state = pick(OPERATOR_LINES), "operator", None
                else:
                    text, speaker = pick(CALLER_LINES), "caller"
                    emotion = min(3, max(0, emotion + pick((-1, 0, 0, 1))))
                    state = EMOTIONS[emotion]
                audio = f"s3://synthetic-dispatch-audio/{session_hex}/{turn:03d}.wav" if R() < 0.5 else None
                transcripts.append((transcript_id, session_id, offset, speaker, text, audio, state,
                                    uni(0.72, 0.99), at))
                if speaker == "caller" and R() < 0.35:
                    for _ in range(ri(1, 2)):
                        entity_type, value = pick(ENTITIES)
                        begin = ri(0, max(0, len(text) - len(value)))
                        entities.append((uuid(), transcript_id, session_id, entity_type, value, uni(0.6, 0.99), begin,
                                         begin + len(value), SYNTHETIC_JSON if R() < 0.3 else None,
                                         ctx.clamp(at + ri(200, 2000))))
            if status in ("completed", "terminated"):
                measured = ctx.clamp(ended + ri(1000, MINUTE))
                for name in METRICS:
                    value = uni(1.5, 45.0, 2) if name == "response_time" else uni(0.35, 1.0)
                    metrics.append((uuid(), session_id, name, value, measured))
        return {
            "dispatch.call_sessions": sessions,
            "dispatch.call_transcripts": transcripts,
            "dispatch.extracted_entities": entities,
            "dispatch.performance_metrics": metrics,
        }
