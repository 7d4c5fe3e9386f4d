import pytest

from guardrail import Category, Moderator, luhn_valid, moderate


def test_clean_text_is_not_flagged():
    r = moderate("What year did the Berlin Wall fall?")
    assert not r.flagged
    assert r.categories == []
    assert set(r.scores) == set(Category)
    assert all(score == 0.0 for score in r.scores.values())
    assert r.redacted_text == r.text


def test_self_harm_is_flagged_and_not_counted_as_violence():
    r = moderate("Sometimes I want to kill myself")
    assert r.flagged
    assert r.categories == [Category.SELF_HARM]
    assert r.harmful
    assert r.scores[Category.SELF_HARM] == 1.0
    assert r.scores[Category.VIOLENCE] == 0.0


def test_violence_and_harassment_together():
    r = moderate("I will murder you, you idiot")
    assert r.categories == [Category.VIOLENCE, Category.HARASSMENT]
    assert r.reasons == ["violence: murder", "harassment: idiot"]


def test_weak_term_scores_below_threshold():
    r = moderate("The attack on Pearl Harbor happened in 1941.")
    assert not r.flagged
    assert r.scores[Category.VIOLENCE] == pytest.approx(0.3)


def test_repeated_weak_terms_accumulate_as_noisy_or():
    r = moderate("a fight, another fight and an attack")
    # 1 - (0.8 * 0.8 * 0.7)
    assert r.scores[Category.VIOLENCE] == pytest.approx(0.552)
    assert r.flagged


def test_matching_is_case_insensitive_and_whole_word():
    assert moderate("STAB").flagged
    assert not moderate("the stable skills of a killer whale").flagged


def test_email_and_phone_are_redacted():
    r = moderate("mail jo.doe@example.co.uk or call +44 20 7946 0958 today")
    assert r.categories == [Category.PERSONAL_DATA]
    assert r.flagged and not r.harmful
    assert r.redacted_text == "mail [EMAIL] or call [PHONE] today"
    assert [f.kind for f in r.findings] == ["email", "phone"]
    assert r.findings[0].match == "jo.doe@example.co.uk"


def test_card_number_needs_valid_luhn_checksum():
    assert moderate("card 4111 1111 1111 1111").redacted_text == "card [CARD]"
    assert not moderate("card 4111 1111 1111 1112").flagged


def test_numbers_that_are_not_phone_numbers():
    for text in ["What is 1234567890 + 5?", "The war lasted 1914-1918.", "Call 911", "12 * 345 = 4140"]:
        assert moderate(text).scores[Category.PERSONAL_DATA] == 0.0, text


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert luhn_valid("5555-5555-5555-4444")
    assert not luhn_valid("7")


def test_per_category_threshold():
    strict = Moderator(thresholds={Category.VIOLENCE: 0.2})
    assert strict.moderate("an attack").categories == [Category.VIOLENCE]
    assert not moderate("an attack").flagged


def test_custom_lexicon_and_threshold_validation():
    m = Moderator(lexicon={Category.HARASSMENT: {r"nerd": 0.9}})
    assert m.moderate("you nerd").categories == [Category.HARASSMENT]
    assert not m.moderate("I will murder you").flagged
    with pytest.raises(ValueError):
        Moderator(threshold=0)


def test_result_is_frozen_and_serializable():
    r = moderate("call 555-123-4567")
    with pytest.raises(Exception):
        r.flagged = False
    data = r.model_dump(mode="json")
    assert data["categories"] == ["personal_data"]
    assert data["findings"][0]["kind"] == "phone"
    assert type(r).model_validate(data) == r
