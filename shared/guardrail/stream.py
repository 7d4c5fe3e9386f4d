"""Sentence buffering for streamed text (e.g. LLM tokens on their way to TTS)."""

import re
from collections.abc import Iterable, Iterator

from .models import ModerationResult
from .moderation import Moderator, moderate

# Terminal punctuation (plus closing quotes/brackets) followed by whitespace, or a
# blank line. Punctuation at the very end of the buffer is not yet a boundary:
# the next chunk may turn "3." into "3.14".
_BOUNDARY = re.compile(r"[.!?…]+[\"')\]»”’]*(?=\s)|\n\s*\n")
_LAST_WORD = re.compile(r"(\w+(?:\.\w+)*)$")
ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr"})


class SentenceBuffer:
    """Accumulates text chunks and releases whole sentences only.

    `feed` returns the sentences completed by a chunk; `flush` returns whatever
    is left at the end of the stream. A buffer that grows past `max_chars`
    without a boundary is released at the last space, so latency stays bounded.
    """

    def __init__(self, max_chars: int = 400):
        if max_chars < 1:
            raise ValueError("max_chars must be positive")
        self.max_chars = max_chars
        self._buf = ""

    @property
    def pending(self) -> str:
        return self._buf

    def _is_abbreviation(self, pos: int) -> bool:
        m = _LAST_WORD.search(self._buf, 0, pos)
        return bool(m) and (m.group(1).lower() in ABBREVIATIONS or len(m.group(1)) == 1 and m.group(1).isupper())

    def _boundary(self) -> int | None:
        for m in _BOUNDARY.finditer(self._buf):
            if m.group().startswith(".") and len(m.group().rstrip("\"')]»”’")) == 1 and self._is_abbreviation(m.start()):
                continue
            return m.end()
        return None

    def _take(self, cut: int) -> str:
        head, self._buf = self._buf[:cut].strip(), self._buf[cut:].lstrip()
        return head

    def feed(self, chunk: str) -> list[str]:
        self._buf += chunk
        out = []
        while (cut := self._boundary()) is not None:
            if sentence := self._take(cut):
                out.append(sentence)
        while len(self._buf) > self.max_chars:
            space = self._buf.rfind(" ", 0, self.max_chars + 1)
            out.append(self._take(space if space > 0 else self.max_chars))
        return out

    def flush(self) -> str | None:
        rest = self._take(len(self._buf))
        return rest or None


def guard_stream(chunks: Iterable[str], moderator: Moderator | None = None,
                 stop_on_harm: bool = True) -> Iterator[ModerationResult]:
    """Moderate a chunk stream sentence by sentence.

    Yields one result per sentence (the remainder included). With
    `stop_on_harm`, the stream ends after the first harmful sentence;
    sentences with only personal data continue (use their redacted text).
    """
    check = moderator.moderate if moderator else moderate
    buffer = SentenceBuffer()

    def sentences() -> Iterator[str]:
        for chunk in chunks:
            yield from buffer.feed(chunk)
        if rest := buffer.flush():
            yield rest

    for sentence in sentences():
        result = check(sentence)
        yield result
        if result.harmful and stop_on_harm:
            return
