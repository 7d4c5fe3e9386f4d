"""Subject specialists (math, history, English) and the intent router that picks one."""

from .arithmetic import MathError, MathSpecialist, evaluate
from .base import Answer, Specialist
from .english import EnglishSpecialist, past_tense, pluralize
from .history import HistorySpecialist
from .llm import LLMError, LLMSpecialist
from .router import IntentRouter, Route, SpecialistHub

__all__ = [
    "Answer",
    "EnglishSpecialist",
    "HistorySpecialist",
    "IntentRouter",
    "LLMError",
    "LLMSpecialist",
    "MathError",
    "MathSpecialist",
    "Route",
    "Specialist",
    "SpecialistHub",
    "evaluate",
    "past_tense",
    "pluralize",
]
