import pytest

from specialists import LLMError, LLMSpecialist


def test_llm_specialist_builds_request_and_parses_reply():
    calls = []

    def transport(url, headers, payload, timeout):
        calls.append((url, headers, payload, timeout))
        return {"choices": [{"message": {"role": "assistant", "content": " Paris. "}}]}

    llm = LLMSpecialist(api_key="sk-test", model="tiny", base_url="http://llm.local/v1/", transport=transport)
    answer = llm.answer("Capital of France?")
    assert (answer.specialist, answer.text, answer.confidence) == ("llm", "Paris.", 0.7)
    url, headers, payload, timeout = calls[0]
    assert url == "http://llm.local/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert payload["model"] == "tiny" and payload["messages"][-1] == {"role": "user", "content": "Capital of France?"}
    assert timeout == 30.0


def test_llm_specialist_errors(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="no API key"):
        LLMSpecialist()
    for reply in ({"error": "quota"}, {"choices": []}, {"choices": [{"message": {"content": "  "}}]}):
        llm = LLMSpecialist(api_key="k", transport=lambda *args, reply=reply: reply)
        with pytest.raises(LLMError):
            llm.answer("hi")
