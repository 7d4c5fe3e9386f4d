"""Conversation session state machine."""

import time
import uuid
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class SessionState(StrEnum):
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ENDED = "ended"


S = SessionState
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.IDLE: frozenset({S.LISTENING, S.ENDED}),
    S.LISTENING: frozenset({S.THINKING, S.IDLE, S.ENDED}),
    S.THINKING: frozenset({S.SPEAKING, S.LISTENING, S.ENDED}),  # back to listening: turn dropped
    S.SPEAKING: frozenset({S.LISTENING, S.IDLE, S.ENDED}),  # listening: next turn or barge-in
    S.ENDED: frozenset(),
}


class InvalidTransition(RuntimeError):
    def __init__(self, current: SessionState, target: SessionState):
        super().__init__(f"cannot go from {current.value} to {target.value}")
        self.current, self.target = current, target


class Turn(BaseModel):
    """One answered user turn, as kept in the session transcript."""

    model_config = ConfigDict(frozen=True)

    user_text: str
    reply: str
    specialist: str
    blocked: bool
    escalate: bool


Listener = Callable[[SessionState, SessionState], None]


class Session:
    def __init__(self, session_id: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.id = session_id or uuid.uuid4().hex
        self.state = SessionState.IDLE
        self.history: list[tuple[SessionState, SessionState, float]] = []
        self.turns: list[Turn] = []
        self._clock = clock
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        """Call `listener(old, new)` after every transition."""
        self._listeners.append(listener)

    def can(self, target: SessionState) -> bool:
        return target in TRANSITIONS[self.state]

    def transition(self, target: SessionState) -> None:
        target = SessionState(target)
        if not self.can(target):
            raise InvalidTransition(self.state, target)
        old, self.state = self.state, target
        self.history.append((old, target, self._clock()))
        for listener in self._listeners:
            listener(old, target)

    def end(self) -> None:
        self.transition(SessionState.ENDED)

    @property
    def ended(self) -> bool:
        return self.state is SessionState.ENDED
