"""Result models for moderation."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Category(StrEnum):
    VIOLENCE = "violence"
    SELF_HARM = "self_harm"
    HARASSMENT = "harassment"
    PERSONAL_DATA = "personal_data"


class Finding(BaseModel):
    """One match in the text: a lexicon term or a piece of personal data."""

    model_config = ConfigDict(frozen=True)

    category: Category
    kind: str = Field(description="'term', or the personal data kind: email, phone, card")
    match: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class ModerationResult(BaseModel):
    """Outcome of moderating one text."""

    model_config = ConfigDict(frozen=True)

    text: str
    flagged: bool
    categories: list[Category] = Field(description="Categories at or above threshold")
    scores: dict[Category, float] = Field(description="Score in [0, 1] for every category")
    findings: list[Finding] = []
    redacted_text: str

    @property
    def harmful(self) -> bool:
        """Flagged for anything but personal data (which redaction handles)."""
        return any(c is not Category.PERSONAL_DATA for c in self.categories)

    @property
    def reasons(self) -> list[str]:
        """Human-readable reasons, one per flagged category."""
        out = []
        for cat in self.categories:
            hits = sorted({f.kind if cat is Category.PERSONAL_DATA else f.match.lower()
                           for f in self.findings if f.category is cat})
            out.append(f"{cat.value}: {', '.join(hits)}")
        return out
