"""History specialist answering from a small built-in fact base."""

import re
from dataclasses import dataclass

from .base import Answer


@dataclass(frozen=True)
class Fact:
    keywords: tuple[str, ...]
    answer: str


FACTS = (
    Fact(("world war ii", "world war 2", "second world war", "wwii", "ww2"),
         "World War II lasted from 1939 to 1945."),
    Fact(("world war i", "world war 1", "first world war", "great war", "wwi", "ww1"),
         "World War I lasted from 1914 to 1918."),
    Fact(("moon landing", "apollo 11", "on the moon", "neil armstrong"),
         "Apollo 11 landed on the Moon on 20 July 1969; Neil Armstrong was the first person to walk on it."),
    Fact(("berlin wall",), "The Berlin Wall fell on 9 November 1989."),
    Fact(("french revolution", "bastille"),
         "The French Revolution began in 1789 with the storming of the Bastille."),
    Fact(("magna carta", "king john"), "King John of England sealed the Magna Carta in 1215."),
    Fact(("declaration of independence", "american independence", "independence day"),
         "The US Declaration of Independence was adopted on 4 July 1776."),
    Fact(("columbus", "discovered america"), "Christopher Columbus reached the Americas in 1492."),
    Fact(("roman empire", "fall of rome"), "The Western Roman Empire fell in 476 AD."),
    Fact(("battle of hastings", "hastings", "norman conquest", "william the conqueror"),
         "The Battle of Hastings was fought in 1066; William the Conqueror won it."),
    Fact(("printing press", "gutenberg"),
         "Johannes Gutenberg developed the movable-type printing press around 1440."),
)


def _pattern(keywords: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(map(re.escape, keywords)) + r")\b", re.IGNORECASE)


class HistorySpecialist:
    name = "history"

    def __init__(self, facts: tuple[Fact, ...] = FACTS):
        self._facts = [(fact, _pattern(fact.keywords)) for fact in facts]

    def answer(self, question: str) -> Answer:
        scored = [(len({m.lower() for m in regex.findall(question)}), fact) for fact, regex in self._facts]
        hits, best = max(scored, key=lambda pair: pair[0], default=(0, None))
        if not hits:
            return Answer(self.name, "I don't know that part of history yet.", 0.0)
        return Answer(self.name, best.answer, round(min(0.95, 0.75 + 0.1 * (hits - 1)), 2))
