"""What every specialist returns."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Answer:
    specialist: str
    text: str
    confidence: float  # in [0, 1]; 0 means "could not answer"

    def __post_init__(self):
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must be in [0, 1]")

    @property
    def answered(self) -> bool:
        return self.confidence > 0


class Specialist(Protocol):
    name: str

    def answer(self, question: str) -> Answer: ...
