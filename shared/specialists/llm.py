"""A specialist backed by an OpenAI-compatible chat completions API (stdlib HTTP)."""

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable

from .base import Answer

Transport = Callable[[str, dict[str, str], dict, float], dict]
SYSTEM_PROMPT = "You are a patient tutor for school students. Answer briefly and correctly."


class LLMError(RuntimeError):
    pass


def urllib_transport(url: str, headers: dict[str, str], payload: dict, timeout: float) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise LLMError(f"LLM API returned HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise LLMError(f"LLM API unreachable: {exc}") from exc


class LLMSpecialist:
    name = "llm"

    def __init__(self, api_key: str | None = None, model: str | None = None,
                 base_url: str | None = None, transport: Transport = urllib_transport, timeout: float = 30.0):
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not self.api_key:
            raise LLMError("no API key: pass api_key or set OPENAI_API_KEY")
        self.model = model or os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")).rstrip("/")
        self.transport, self.timeout = transport, timeout

    def answer(self, question: str) -> Answer:
        payload = {"model": self.model, "temperature": 0,
                   "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                {"role": "user", "content": question}]}
        headers = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        data = self.transport(f"{self.base_url}/chat/completions", headers, payload, self.timeout)
        try:
            text = data["choices"][0]["message"]["content"].strip()
        except (KeyError, IndexError, TypeError, AttributeError):
            raise LLMError("unexpected LLM API response") from None
        if not text:
            raise LLMError("empty LLM answer")
        return Answer(self.name, text, 0.7)
