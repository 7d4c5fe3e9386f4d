import pytest

from specialists import Answer, EnglishSpecialist, HistorySpecialist, past_tense, pluralize


def test_history_answers_from_facts():
    history = HistorySpecialist()
    cases = {"When did World War II end?": "1939 to 1945",
             "When did the First World War start?": "1914 to 1918",
             "Who was the first person on the moon?": "1969",
             "In what year was the Magna Carta signed?": "1215"}
    for question, expected in cases.items():
        answer = history.answer(question)
        assert expected in answer.text and answer.confidence == 0.75, question


def test_history_confidence_grows_with_evidence_and_unknowns_get_zero():
    history = HistorySpecialist()
    assert history.answer("When did Apollo 11 and Neil Armstrong land?").confidence == 0.85
    assert history.answer("Who built the pyramids?") == Answer("history", "I don't know that part of history yet.", 0.0)


def test_pluralize_and_past_tense():
    assert [pluralize(w) for w in ["cat", "box", "church", "city", "day", "mouse", "Sheep"]] == \
        ["cats", "boxes", "churches", "cities", "days", "mice", "sheep"]
    assert [past_tense(w) for w in ["walk", "bake", "cry", "play", "stop", "jump", "visit", "go"]] == \
        ["walked", "baked", "cried", "played", "stopped", "jumped", "visited", "went"]


def test_english_specialist_rules():
    english = EnglishSpecialist()
    assert english.answer("What is the plural of 'child'?") == Answer("english", "The plural of 'child' is 'children'.", 0.9)
    assert english.answer("past tense of the verb to plan").text == "The past tense of 'plan' is 'planned'."
    assert english.answer("How do you spell recieve?").text.endswith("is 'receive'.")
    assert english.answer("Is separate spelled right?").text == "Yes, 'separate' is spelled correctly."
    assert english.answer("Define noun").text.startswith("A noun is")
    assert english.answer("What are adjectives?").text.startswith("An adjective is a word that describes")


def test_english_specialist_declines_what_it_cannot_answer():
    assert EnglishSpecialist().answer("Write me a poem").confidence == 0.0
    with pytest.raises(ValueError):
        Answer("english", "x", 1.5)
