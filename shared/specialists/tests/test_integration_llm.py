"""Calls a real LLM API. Deselected with -m "not integration"; skipped without OPENAI_API_KEY."""

import os

import pytest

from specialists import LLMSpecialist, SpecialistHub

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY is not set"),
]


def test_llm_specialist_answers_arithmetic():
    answer = LLMSpecialist().answer("What is 2 + 2? Reply with the number only.")
    assert answer.specialist == "llm"
    assert "4" in answer.text


def test_hub_falls_back_to_llm_for_unknown_subjects():
    answer = SpecialistHub(fallback=LLMSpecialist()).ask("Who wrote the play Hamlet?")
    assert answer.specialist == "llm"
    assert "shakespeare" in answer.text.lower()
