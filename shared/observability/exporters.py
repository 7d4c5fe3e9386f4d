"""Span exporters."""

import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .tracing import Span


class Exporter(Protocol):
    def export(self, span: "Span") -> None: ...


class InMemoryExporter:
    """Keeps finished spans in a list, in the order they ended."""

    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._lock = threading.Lock()

    def export(self, span: "Span") -> None:
        with self._lock:
            self._spans.append(span)

    @property
    def spans(self) -> list["Span"]:
        with self._lock:
            return list(self._spans)

    def named(self, name: str) -> list["Span"]:
        return [s for s in self.spans if s.name == name]

    def get(self, name: str) -> "Span":
        """The single finished span called `name`."""
        found = self.named(name)
        if len(found) != 1:
            raise LookupError(f"expected one span named {name!r}, found {len(found)}")
        return found[0]

    def children(self, parent: "Span") -> list["Span"]:
        return [s for s in self.spans if s.parent_id == parent.span_id]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
