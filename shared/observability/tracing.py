"""Spans and tracers. The current span lives in a context variable, so nesting
follows the call stack and works across threads and asyncio tasks."""

import contextvars
import functools
import inspect
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .exporters import Exporter

log = logging.getLogger(__name__)

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
_current: contextvars.ContextVar["Span | None"] = contextvars.ContextVar("observability_span", default=None)


class Status(StrEnum):
    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


def _check_attribute(key: str, value: Any) -> AttributeValue:
    if not isinstance(key, str) or not key:
        raise TypeError("attribute keys must be non-empty strings")
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str | bool | int | float) for v in value):
        if len({type(v) for v in value}) > 1:
            raise TypeError(f"attribute {key!r}: sequence items must share one type")
        return tuple(value)
    raise TypeError(f"attribute {key!r}: unsupported type {type(value).__name__}")


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start_ns: int
    end_ns: int | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    events: list[tuple[str, dict[str, AttributeValue]]] = field(default_factory=list)
    status: Status = Status.UNSET
    status_message: str | None = None

    @property
    def ended(self) -> bool:
        return self.end_ns is not None

    @property
    def duration_ms(self) -> float | None:
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e6

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = _check_attribute(key, value)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, **attributes: Any) -> None:
        self.events.append((name, {k: _check_attribute(k, v) for k, v in attributes.items()}))

    def set_status(self, status: Status, message: str | None = None) -> None:
        self.status, self.status_message = Status(status), message

    def record_exception(self, exc: BaseException) -> None:
        self.add_event("exception", type=type(exc).__name__, message=str(exc))
        self.set_status(Status.ERROR, f"{type(exc).__name__}: {exc}")


def current_span() -> Span | None:
    """The innermost active span of the current context, if any."""
    return _current.get()


_default_exporters: list[Exporter] = []


def set_default_exporters(exporters: Iterable[Exporter]) -> None:
    """Exporters used by tracers created without explicit ones (see get_tracer)."""
    _default_exporters[:] = list(exporters)


class Tracer:
    """Creates spans and hands finished ones to its exporters.

    Without explicit `exporters`, the module-wide defaults are used at export
    time (see `set_default_exporters`).
    """

    def __init__(self, name: str, exporters: Iterable[Exporter] | None = None,
                 clock: Callable[[], int] = time.perf_counter_ns):
        self.name = name
        self._exporters = None if exporters is None else list(exporters)
        self._clock = clock

    @property
    def exporters(self) -> list[Exporter]:
        return _default_exporters if self._exporters is None else self._exporters

    @contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[Span]:
        """Run a block inside a child of the current span (or a new trace).

        An exception escaping the block is recorded, sets ERROR and propagates;
        otherwise an UNSET status becomes OK.
        """
        parent = _current.get()
        span = Span(name=name, trace_id=parent.trace_id if parent else secrets.token_hex(16),
                    span_id=secrets.token_hex(8), parent_id=parent.span_id if parent else None,
                    start_ns=self._clock())
        span.set_attribute("tracer", self.name)
        span.set_attributes(attributes)
        token = _current.set(span)
        try:
            yield span
        except BaseException as exc:
            span.record_exception(exc)
            raise
        else:
            if span.status is Status.UNSET:
                span.set_status(Status.OK)
        finally:
            _current.reset(token)
            span.end_ns = self._clock()
            self._export(span)

    def _export(self, span: Span) -> None:
        for exporter in self.exporters:
            try:
                exporter.export(span)
            except Exception:  # tracing must never break the traced code
                log.exception("span exporter %r failed", exporter)

    def traced(self, name: str | None = None, **attributes: Any) -> Callable:
        """Decorator: run each call of a function (sync or async) in a span."""
        def decorate(fn: Callable) -> Callable:
            span_name = name or fn.__qualname__
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def async_wrapper(*args, **kwargs):
                    with self.span(span_name, **attributes):
                        return await fn(*args, **kwargs)
                return async_wrapper

            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                with self.span(span_name, **attributes):
                    return fn(*args, **kwargs)
            return wrapper
        return decorate


def get_tracer(name: str) -> Tracer:
    """A tracer that exports to the module-wide default exporters."""
    return Tracer(name)
