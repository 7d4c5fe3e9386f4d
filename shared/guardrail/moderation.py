"""Lexicon- and pattern-based text moderation."""

import re
from collections.abc import Mapping

from .models import Category, Finding, ModerationResult

# Weighted term patterns per category. A category's score combines its matches
# as a noisy-or: 1 - prod(1 - weight). Self-harm is checked before violence so
# that "kill myself" is not also counted as violence.
LEXICON: dict[Category, dict[str, float]] = {
    Category.SELF_HARM: {
        r"kill(?:ing)? myself": 1.0,
        r"end(?:ing)? my (?:own )?life": 1.0,
        r"(?:hurt|cut|harm)(?:ing)? myself": 0.9,
        r"suicid(?:e|al)": 0.8,
        r"self[- ]harm(?:ing)?": 0.8,
        r"want to die": 0.8,
    },
    Category.VIOLENCE: {
        r"murder(?:s|ed|ing)?": 0.7,
        r"stab(?:s|bed|bing)?": 0.7,
        r"beat (?:you|him|her|them) up": 0.7,
        r"kill(?:s|ed|ing)?": 0.6,
        r"shoot(?:s|ing)?": 0.6,
        r"bomb(?:s|ed|ing)?": 0.6,
        r"attack(?:s|ed|ing)?": 0.3,
        r"weapons?|guns?": 0.3,
        r"fight(?:s|ing)?": 0.2,
    },
    Category.HARASSMENT: {
        r"i hate you": 0.6,
        r"idiots?|losers?|worthless": 0.5,
        r"stupid|dumb": 0.4,
        r"shut up": 0.3,
    },
}

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CARD_RE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
# At least two digit groups joined by a separator, so bare numbers are not phones.
PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?!\w)"
)
PLACEHOLDERS = {"card": "[CARD]", "email": "[EMAIL]", "phone": "[PHONE]"}


def luhn_valid(number: str) -> bool:
    """Luhn checksum of the digits in `number` (separators are ignored)."""
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _overlaps(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in taken)


class Moderator:
    """Scores text per category, flags categories at or above their threshold
    and redacts personal data."""

    def __init__(self, threshold: float = 0.5, thresholds: Mapping[Category, float] | None = None,
                 lexicon: Mapping[Category, Mapping[str, float]] | None = None):
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.thresholds = {cat: threshold for cat in Category} | dict(thresholds or {})
        lexicon = LEXICON if lexicon is None else lexicon
        self._patterns = {
            cat: [(re.compile(rf"\b(?:{p})\b", re.IGNORECASE), w) for p, w in terms.items()]
            for cat, terms in lexicon.items()
        }

    def _personal_data(self, text: str, taken: list[tuple[int, int]]) -> list[Finding]:
        found = []
        checks = (
            ("card", CARD_RE, luhn_valid),
            ("email", EMAIL_RE, lambda m: True),
            ("phone", PHONE_RE, lambda m: 9 <= _digits(m) <= 15),
        )
        for kind, regex, valid in checks:
            for m in regex.finditer(text):
                if valid(m.group()) and not _overlaps(m.start(), m.end(), taken):
                    taken.append(m.span())
                    found.append(Finding(category=Category.PERSONAL_DATA, kind=kind,
                                         match=m.group(), start=m.start(), end=m.end()))
        return found

    def moderate(self, text: str) -> ModerationResult:
        taken: list[tuple[int, int]] = []
        findings = self._personal_data(text, taken)
        scores = {cat: 0.0 for cat in Category}
        if findings:
            scores[Category.PERSONAL_DATA] = 1.0
        for cat, patterns in self._patterns.items():
            miss = 1.0
            for regex, weight in patterns:
                for m in regex.finditer(text):
                    if _overlaps(m.start(), m.end(), taken):
                        continue
                    taken.append(m.span())
                    miss *= 1 - weight
                    findings.append(Finding(category=cat, kind="term", match=m.group(),
                                            start=m.start(), end=m.end()))
            scores[cat] = round(1 - miss, 4)
        findings.sort(key=lambda f: f.start)
        categories = [c for c in Category if scores[c] > 0 and scores[c] >= self.thresholds[c]]
        redacted = text
        for f in sorted(findings, key=lambda f: f.start, reverse=True):
            if f.category is Category.PERSONAL_DATA:
                redacted = redacted[:f.start] + PLACEHOLDERS[f.kind] + redacted[f.end:]
        return ModerationResult(text=text, flagged=bool(categories), categories=categories,
                                scores=scores, findings=findings, redacted_text=redacted)


_default = Moderator()


def moderate(text: str) -> ModerationResult:
    """Moderate `text` with the default moderator."""
    return _default.moderate(text)
