"""Synthetic voice-agent calls booking appointments: the conversation, its turns, the state machine,
the slots it filled, the appointment, latency metrics, errors and feedback.

Marker: conversations.session_id starts with ``synthetic-``; every other voice row written here
belongs to such a conversation (error logs and metrics included, so removal finds them).
"""

from __future__ import annotations

from tdbctl.dialects.bulkrows import date_text
from tdbctl.seed.synthetic.common import DAY, HOUR, MINUTE, SYNTHETIC_JSON, DomainContext, cumulative

STATUS = cumulative({"completed": 0.74, "abandoned": 0.12, "failed": 0.10, "active": 0.04})
STATES = ("greeting", "collect_name", "collect_date", "collect_time", "collect_contact", "confirm", "terminal")
SLOTS = (("name", "collect_name"), ("date", "collect_date"), ("time", "collect_time"),
         ("phone", "collect_contact"), ("appointment_type", "collect_date"))
NAMES = ("Maria Lopez", "James O'Neil", "Aisha Khan", "Tom Becker", "Li Wei", "Sofia Rossi", "Kwame Mensah")
TYPES = ("dental cleaning", "check-up", "consultation", "follow-up", "vaccination")
AGENT_LINES = {
    "greeting": "Hello, thanks for calling Riverside Clinic. How can I help you today?",
    "collect_name": "Sure, I can book that for you. May I have your full name?",
    "collect_date": "Which day would suit you best?",
    "collect_time": "We have 9:30, 11:00 and 15:45 available. Which time works for you?",
    "collect_contact": "What's the best phone number to reach you?",
    "confirm": "Let me confirm: {type} on {date} at {time}. Shall I book it?",
    "terminal": "You're all set. You'll get a text with your confirmation code. Goodbye!",
}
USER_LINES = {
    "greeting": "Hi, I'd like to book an appointment.",
    "collect_name": "It's {name}.",
    "collect_date": "Next Tuesday if possible, it's for a {type}.",
    "collect_time": "{time} please.",
    "collect_contact": "You can reach me on 555 0142.",
    "confirm": "Yes, that's right.",
    "terminal": "Thank you, bye.",
}
TIMES = ("09:30", "11:00", "15:45", "10:15", "14:00")
TIME_MS = {text: int(text[:2]) * HOUR + int(text[3:]) * MINUTE for text in TIMES}
ERRORS = (("stt_error", "Speech-to-text returned no transcript within 5000 ms"),
          ("llm_error", "LLM request timed out after 30 s"),
          ("tts_error", "Text-to-speech synthesis failed: voice unavailable"),
          ("connection_error", "Media stream disconnected (WebRTC ICE failure)"))
FEEDBACK = (("positive", 5, "Quick and easy, thank you."), ("positive", 4, "Worked well, a bit slow at times."),
            ("suggestion", 3, "Please offer evening slots."), ("negative", 2, "It did not understand my name."),
            ("bug", 1, "The call dropped before confirming."))


class VoiceGenerator:
    domain = "voice"
    marker_table = "voice.conversations"
    rows_per_session = 51  # about: the largest domain starts first (see synthetic.generate)
    tables = {
        "voice.conversations": ("id", "session_id", "room_name", "user_id", "status", "started_at", "ended_at",
                                "duration_seconds", "final_state", "metadata", "created_at", "updated_at"),
        "voice.conversation_turns": ("id", "conversation_id", "turn_number", "role", "text", "audio_url",
                                     "transcribed_text", "llm_response", "state_at_turn", "metadata", "created_at"),
        "voice.state_transitions": ("id", "conversation_id", "from_state", "to_state", "trigger_type",
                                    "trigger_data", "transition_time", "latency_ms", "metadata"),
        "voice.extracted_slots": ("id", "conversation_id", "turn_id", "slot_name", "slot_value", "confidence_score",
                                  "extraction_method", "validated", "created_at"),
        "voice.appointments": ("id", "conversation_id", "user_name", "appointment_date", "appointment_time",
                               "appointment_type", "contact_info", "status", "confirmation_code", "metadata",
                               "created_at", "updated_at"),
        "voice.system_metrics": ("time", "metric_name", "metric_value", "tags", "conversation_id"),
        "voice.error_logs": ("id", "conversation_id", "error_type", "error_message", "stack_trace", "context",
                             "severity", "resolved", "created_at"),
        "voice.user_feedback": ("id", "conversation_id", "rating", "feedback_text", "feedback_type", "metadata",
                                "created_at"),
    }

    def __init__(self, ctx: DomainContext):
        self.ctx = ctx
        self.callers = [f"synthetic-caller-{i:04d}" for i in range(max(5, ctx.plan.sessions // 3))]

    def prepare(self, conn) -> None:
        pass  # voice has no reference rows to point at

    def finish(self, conn, dialect) -> None:
        pass

    def chunk(self, first: int, count: int) -> dict[str, list[tuple]]:
        out = {name: [] for name in self.tables}
        for index in range(first, first + count):
            self._conversation(out, index)
        return out

    def _conversation(self, out, index: int) -> None:
        ctx = self.ctx
        R, ri, pick, uni, uuid = ctx.random, ctx.ri, ctx.pick, ctx.uni, ctx.uuid
        turns, transitions, slots = out["voice.conversation_turns"], out["voice.state_transitions"], \
            out["voice.extracted_slots"]
        metrics = out["voice.system_metrics"]
        status = ctx.pick_weighted(*STATUS)
        # How far through the booking flow the call got, and how many turns it took to get there.
        reached = len(STATES) if status == "completed" else ri(2, len(STATES) - 1)
        exchanges = [STATES[min(i // 3, reached - 1)] for i in range(ri(reached * 2, reached * 4))]
        duration = len(exchanges) * ri(9_000, 16_000)
        started = ctx.session_window(index, duration, recent=status == "active")
        conversation_id, session_hex = uuid(), uuid().hex()
        ended = None if status == "active" else started + duration
        facts = {"name": pick(NAMES), "type": pick(TYPES), "time": pick(TIMES)}
        booked_day = started + ri(1, 30) * DAY
        facts["date"] = date_text(booked_day)
        final_state = {"completed": "terminal", "failed": "fallback", "active": None}.get(status, exchanges[-1])
        out["voice.conversations"].append((
            conversation_id, f"synthetic-{session_hex}", f"synthetic-room-{session_hex[:12]}",
            pick(self.callers) if R() < 0.8 else None, status, started,
            ended, None if ended is None else duration // 1000, final_state,
            f'{{"synthetic": true, "agent_version": "{pick(("1.4.2", "1.5.0"))}", "language": "en-US"}}',
            started, ended or started,
        ))
        at, previous_state, user_turns = started, None, {}
        for number, state in enumerate(exchanges, start=1):
            at += ri(2_000, 8_000)
            when = at
            turn_id = uuid()
            if number % 2:
                text = AGENT_LINES[state].format(**facts)
                turns.append((turn_id, conversation_id, number, "agent", text, None, None, text, state,
                              f'{{"latency_ms": {ri(350, 2400)}}}', when))
                latency = ri(400, 2600)
                tags = f'{{"synthetic": true, "state": "{state}"}}'
                metrics.append((when, "total_latency_ms", latency, tags, conversation_id))
                metrics.append((when, "llm_latency_ms", round(latency * uni(0.4, 0.7), 2), tags, conversation_id))
            else:
                text = USER_LINES[state].format(**facts)
                turns.append((turn_id, conversation_id, number, "user", text,
                              f"s3://synthetic-voice-audio/{session_hex}/{number:03d}.opus", text, None, state,
                              f'{{"latency_ms": {ri(350, 2400)}}}', when))
                user_turns.setdefault(state, turn_id)
            if state != previous_state:
                transitions.append((uuid(), conversation_id, previous_state, state,
                                    "user_input" if previous_state else "call_start", f'{{"turn": {number}}}', when,
                                    ri(5, 180), None))
                previous_state = state
        if status in ("failed", "abandoned"):
            at += ri(1_000, 5_000)
            transitions.append((uuid(), conversation_id, previous_state, "fallback" if status == "failed" else "hangup",
                                "error" if status == "failed" else "timeout", f'{{"reason": "{status}"}}',
                                ctx.clamp(at), ri(5, 180), None))
        values = {"name": facts["name"], "date": facts["date"], "time": facts["time"], "phone": "555 0142",
                  "appointment_type": facts["type"]}
        for slot_name, state in SLOTS:
            if state in user_turns:
                slots.append((uuid(), conversation_id, user_turns[state], slot_name, values[slot_name],
                              uni(0.55, 0.99, 2), pick(("llm", "regex", "nlp")), R() < 0.7, ctx.clamp(at)))
        if status == "completed" and R() < 0.85:
            created = ctx.clamp(at)
            done = booked_day < ctx.plan.end_ms
            out["voice.appointments"].append((
                uuid(), conversation_id, facts["name"], booked_day, TIME_MS[facts["time"]], facts["type"],
                "555 0142", pick(("completed", "completed", "cancelled")) if done else "confirmed",
                f"SYN-{conversation_id.hex()[:12].upper()}", '{"synthetic": true, "channel": "voice"}', created, created))
        if ended is not None:
            metrics.append((ended, "state_transition_count", float(len(set(exchanges))), SYNTHETIC_JSON,
                            conversation_id))
        if status == "failed" or R() < 0.02:
            error_type, message = pick(ERRORS)
            severity = pick(("low", "medium", "high", "critical")) if status == "failed" else "low"
            when = ctx.clamp(started + ri(1_000, duration))
            out["voice.error_logs"].append((
                uuid(), conversation_id, error_type, message,
                f'Traceback (most recent call last):\n  File "agent/{error_type}.py", line 88, in handle\n{message}',
                f'{{"synthetic": true, "state": "{exchanges[-1]}"}}', severity, when < ctx.plan.end_ms - 14 * DAY,
                when))
        if status == "completed" and R() < 0.25:
            kind, rating, text = pick(FEEDBACK)
            out["voice.user_feedback"].append((uuid(), conversation_id, rating, text, kind, SYNTHETIC_JSON,
                                               ctx.clamp(ended + ri(MINUTE, 30 * MINUTE))))
