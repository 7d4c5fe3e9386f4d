"""Content moderation for text and sentence-level buffering of text streams."""

from .models import Category, Finding, ModerationResult
from .moderation import Moderator, luhn_valid, moderate
from .stream import SentenceBuffer, guard_stream

__all__ = [
    "Category",
    "Finding",
    "ModerationResult",
    "Moderator",
    "SentenceBuffer",
    "guard_stream",
    "luhn_valid",
    "moderate",
]
