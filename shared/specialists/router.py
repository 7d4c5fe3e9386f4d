"""Intent routing: score a question per intent and dispatch it to a specialist,
traced with observability."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from observability import Tracer, get_tracer

from .arithmetic import MathSpecialist
from .base import Answer, Specialist
from .english import EnglishSpecialist
from .history import HistorySpecialist

# (pattern, weight) per intent; every match adds its weight.
SIGNALS: dict[str, list[tuple[str, float]]] = {
    "math": [
        (r"\d\s*(?:\*\*|[-+*/x×÷^%])\s*\(?-?\d", 3.0),
        (r"\b(?:plus|minus|times|multiplied|divided|squared|cubed|square root|sum|product|"
         r"calculate|compute|math|arithmetic|equation)\b", 2.0),
        (r"\bhow much is\b", 1.0),
    ],
    "history": [
        (r"\b(?:history|historical|war|battle|empire|king|queen|emperor|president|revolution|"
         r"century|ancient|dynasty|treaty|independence|landing|wall)\b", 2.0),
        (r"\b(?:when did|when was|who was|who discovered|in what year|what year)\b", 1.5),
        (r"\b1\d{3}\b", 0.5),
    ],
    "english": [
        (r"\b(?:plural|singular|past tense|spell|spelled|spelling|grammar|noun|verb|adjective|adverb|"
         r"pronoun|synonym|antonym|definition|define|sentence|punctuation|metaphor|simile|word)\b", 2.0),
        (r"\bmeaning of\b|\bwhat does \w+ mean\b", 1.5),
    ],
}
FALLBACK_TEXT = "I'm not sure which subject that is. Could you rephrase, or ask your teacher?"


@dataclass(frozen=True)
class Route:
    intent: str | None
    confidence: float
    scores: dict[str, float]


class IntentRouter:
    """Confidence is the best intent's share of all evidence, smoothed so that
    a single weak signal stays unsure: best / (total + smoothing)."""

    def __init__(self, signals: Mapping[str, list[tuple[str, float]]] = SIGNALS, smoothing: float = 1.0):
        self.smoothing = smoothing
        self._signals = {intent: [(re.compile(p, re.I), w) for p, w in pairs] for intent, pairs in signals.items()}

    def route(self, question: str) -> Route:
        scores = {intent: sum(w * len(rx.findall(question)) for rx, w in pairs)
                  for intent, pairs in self._signals.items()}
        best = max(scores, key=scores.get)
        total = sum(scores.values())
        if scores[best] == 0:
            return Route(None, 0.0, scores)
        return Route(best, round(scores[best] / (total + self.smoothing), 4), scores)


def default_specialists() -> dict[str, Specialist]:
    return {"math": MathSpecialist(), "history": HistorySpecialist(), "english": EnglishSpecialist()}


class SpecialistHub:
    """Routes questions to specialists. Below `min_confidence` the question goes
    to `fallback` (e.g. an LLM specialist) if given, else gets a 'not sure'
    answer with confidence 0. The answer's confidence is route x specialist."""

    def __init__(self, specialists: Mapping[str, Specialist] | None = None, router: IntentRouter | None = None,
                 tracer: Tracer | None = None, min_confidence: float = 0.5, fallback: Specialist | None = None):
        self.specialists = dict(default_specialists() if specialists is None else specialists)
        self.router = router or IntentRouter()
        self.tracer = tracer or get_tracer("specialists")
        self.min_confidence = min_confidence
        self.fallback = fallback

    def ask(self, question: str) -> Answer:
        with self.tracer.span("specialists.ask", question_chars=len(question)) as span:
            route = self.router.route(question)
            span.set_attributes({"route.intent": route.intent or "none", "route.confidence": route.confidence})
            specialist = self.specialists.get(route.intent) if route.confidence >= self.min_confidence else None
            if specialist is None:
                span.set_attribute("route.fallback", True)
                if self.fallback is None:
                    return Answer("none", FALLBACK_TEXT, 0.0)
                specialist = self.fallback
            with self.tracer.span("specialists.answer", specialist=specialist.name) as inner:
                answer = specialist.answer(question)
                inner.set_attribute("answer.confidence", answer.confidence)
            if specialist is self.fallback:
                return answer
            return replace(answer, confidence=round(route.confidence * answer.confidence, 4))
