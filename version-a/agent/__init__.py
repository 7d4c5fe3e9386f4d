"""Voice tutoring agent: a session state machine and a guarded turn handler that
routes questions to specialists and moderates what goes in and out."""

from .guarded import GuardedAgent, TurnResult
from .session import InvalidTransition, Session, SessionState, Turn

__all__ = ["GuardedAgent", "InvalidTransition", "Session", "SessionState", "Turn", "TurnResult"]
