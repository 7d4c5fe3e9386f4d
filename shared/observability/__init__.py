"""Minimal tracing: nested spans with attributes, events and status, exported to
pluggable exporters (an in-memory one is included for tests)."""

from .exporters import Exporter, InMemoryExporter
from .tracing import Span, Status, Tracer, current_span, get_tracer, set_default_exporters

__all__ = [
    "Exporter",
    "InMemoryExporter",
    "Span",
    "Status",
    "Tracer",
    "current_span",
    "get_tracer",
    "set_default_exporters",
]
