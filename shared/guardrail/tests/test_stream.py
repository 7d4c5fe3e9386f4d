import pytest

from guardrail import Category, SentenceBuffer, guard_stream


def feed_all(buffer, chunks):
    out = []
    for chunk in chunks:
        out.extend(buffer.feed(chunk))
    return out


def test_releases_only_complete_sentences():
    b = SentenceBuffer()
    assert b.feed("Hello the") == []
    assert b.feed("re. How are") == ["Hello there."]
    assert b.pending == "How are"
    assert b.feed(" you? Fine") == ["How are you?"]
    assert b.flush() == "Fine"
    assert b.flush() is None


def test_punctuation_at_chunk_end_waits_for_next_chunk():
    b = SentenceBuffer()
    assert feed_all(b, ["Pi is 3.", "14159! Wow", "!! Done"]) == ["Pi is 3.14159!", "Wow!!"]
    assert b.flush() == "Done"


def test_abbreviations_and_initials_do_not_end_sentences():
    b = SentenceBuffer()
    out = feed_all(b, ["Dr. Smith met J. K. Rowling, e.g. in London. ", "Then left."])
    assert out == ["Dr. Smith met J. K. Rowling, e.g. in London."]
    assert b.flush() == "Then left."


def test_closing_quotes_and_paragraph_breaks():
    b = SentenceBuffer()
    out = feed_all(b, ['He said "stop." Then', " a list\n\nitem two "])
    assert out == ['He said "stop."', "Then a list"]
    assert b.flush() == "item two"


def test_overlong_text_is_released_at_a_space():
    b = SentenceBuffer(max_chars=10)
    assert b.feed("one two three four") == ["one two"]
    assert b.pending == "three four"
    assert b.feed("x") == ["three"]
    assert b.feed("abcdefghijklm") == ["fourxabcde"]
    assert b.pending == "fghijklm"
    with pytest.raises(ValueError):
        SentenceBuffer(max_chars=0)


def test_guard_stream_redacts_and_stops_on_harm():
    chunks = ["The sum is 4. My mail is a@b", ".io, write me. I will stab", " you. Never said."]
    results = list(guard_stream(chunks))
    assert [r.text for r in results] == ["The sum is 4.", "My mail is a@b.io, write me.", "I will stab you."]
    assert results[1].flagged and not results[1].harmful
    assert results[1].redacted_text == "My mail is [EMAIL], write me."
    assert results[2].categories == [Category.VIOLENCE]


def test_guard_stream_without_stopping_includes_remainder():
    results = list(guard_stream(["You idiot. Fine", " then"], stop_on_harm=False))
    assert [r.harmful for r in results] == [True, False]
    assert results[-1].text == "Fine then"
