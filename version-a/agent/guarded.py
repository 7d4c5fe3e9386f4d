"""A turn handler that moderates the user's words, routes them to a specialist and
moderates the reply before it is spoken."""

from collections.abc import Iterable, Iterator

from guardrail import Category, Moderator, guard_stream
from observability import Tracer, get_tracer
from pydantic import BaseModel, ConfigDict
from specialists import SpecialistHub

from .session import InvalidTransition, Session, SessionState, Turn

SUPPORT_REPLY = ("I'm really sorry you're feeling this way. You're not alone: I'm letting your teacher "
                 "know so a person can talk with you. If you are in danger, please call your local "
                 "emergency number now.")
REFUSAL_REPLY = "I can't help with that. Let's get back to your lesson."


class TurnResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    reply: str
    specialist: str
    confidence: float
    blocked: bool = False
    escalate: bool = False
    categories: list[Category] = []


class GuardedAgent:
    """Handles user turns: LISTENING -> THINKING -> SPEAKING.

    Self-harm in the input gets a supportive reply and an escalation; other
    harmful input is refused; personal data is redacted before routing. A
    harmful specialist reply is withheld and escalated; an answer below
    `escalate_below` confidence is delivered but flagged for a teacher.
    """

    def __init__(self, hub: SpecialistHub | None = None, moderator: Moderator | None = None,
                 tracer: Tracer | None = None, escalate_below: float = 0.3):
        self.tracer = tracer or get_tracer("agent")
        self.hub = hub or SpecialistHub(tracer=self.tracer)
        self.moderator = moderator or Moderator()
        self.escalate_below = escalate_below

    def handle_turn(self, session: Session, user_text: str) -> TurnResult:
        with self.tracer.span("agent.turn", session_id=session.id) as span:
            session.transition(SessionState.THINKING)
            try:
                result = self._respond(user_text)
            except Exception:
                session.transition(SessionState.LISTENING)  # drop the turn, keep the session usable
                raise
            span.set_attributes({"specialist": result.specialist, "blocked": result.blocked,
                                 "escalate": result.escalate, "categories": [c.value for c in result.categories]})
            session.transition(SessionState.SPEAKING)
            session.turns.append(Turn(user_text=user_text, reply=result.reply, specialist=result.specialist,
                                      blocked=result.blocked, escalate=result.escalate))
            return result

    def _respond(self, user_text: str) -> TurnResult:
        inbound = self.moderator.moderate(user_text)
        if Category.SELF_HARM in inbound.categories:
            return TurnResult(reply=SUPPORT_REPLY, specialist="guardrail", confidence=1.0,
                              blocked=True, escalate=True, categories=inbound.categories)
        if inbound.harmful:
            return TurnResult(reply=REFUSAL_REPLY, specialist="guardrail", confidence=1.0,
                              blocked=True, categories=inbound.categories)
        answer = self.hub.ask(inbound.redacted_text)
        outbound = self.moderator.moderate(answer.text)
        categories = list(dict.fromkeys(inbound.categories + outbound.categories))
        if outbound.harmful:
            return TurnResult(reply=REFUSAL_REPLY, specialist=answer.specialist, confidence=answer.confidence,
                              blocked=True, escalate=True, categories=categories)
        return TurnResult(reply=outbound.redacted_text, specialist=answer.specialist, confidence=answer.confidence,
                          escalate=answer.confidence < self.escalate_below, categories=categories)

    def speak(self, session: Session, chunks: Iterable[str]) -> Iterator[str]:
        """Yield a streamed reply sentence by sentence for TTS, personal data
        redacted, stopping before the first harmful sentence. The session goes
        back to LISTENING when the stream ends or the consumer stops early."""
        if session.state is not SessionState.SPEAKING:
            raise InvalidTransition(session.state, SessionState.SPEAKING)
        return self._speak(session, chunks)

    def _speak(self, session: Session, chunks: Iterable[str]) -> Iterator[str]:
        try:
            for result in guard_stream(chunks, self.moderator):
                if result.harmful:
                    return
                yield result.redacted_text
        finally:
            if session.state is SessionState.SPEAKING:
                session.transition(SessionState.LISTENING)
