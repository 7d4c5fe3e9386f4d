import asyncio
import itertools
import logging
import threading

import pytest

from observability import InMemoryExporter, Status, Tracer, current_span, get_tracer, set_default_exporters


@pytest.fixture
def exporter():
    return InMemoryExporter()


@pytest.fixture
def tracer(exporter):
    ticks = itertools.count(0, 1_000_000)  # every clock read advances 1 ms
    return Tracer("test", exporters=[exporter], clock=lambda: next(ticks))


def test_span_records_attributes_status_and_duration(tracer, exporter):
    with tracer.span("work", user="ada", retries=2) as span:
        span.set_attribute("ratio", 0.5)
        span.add_event("checkpoint", step=1)
        assert not span.ended
    done = exporter.get("work")
    assert done is span and done.ended
    assert done.attributes == {"tracer": "test", "user": "ada", "retries": 2, "ratio": 0.5}
    assert done.events == [("checkpoint", {"step": 1})]
    assert done.status is Status.OK
    assert done.duration_ms == 1.0


def test_nested_spans_share_trace_and_link_parents(tracer, exporter):
    with tracer.span("root") as root:
        with tracer.span("child") as child:
            with tracer.span("grandchild") as grandchild:
                pass
        with tracer.span("sibling") as sibling:
            pass
    assert [s.name for s in exporter.spans] == ["grandchild", "child", "sibling", "root"]
    assert root.parent_id is None
    assert child.parent_id == root.span_id and sibling.parent_id == root.span_id
    assert grandchild.parent_id == child.span_id
    assert {s.trace_id for s in exporter.spans} == {root.trace_id}
    assert exporter.children(root) == [child, sibling]


def test_separate_roots_start_separate_traces(tracer, exporter):
    with tracer.span("a"):
        pass
    with tracer.span("b"):
        pass
    a, b = exporter.spans
    assert a.trace_id != b.trace_id and len(a.trace_id) == 32 and len(a.span_id) == 16


def test_exception_sets_error_and_propagates(tracer, exporter):
    with pytest.raises(ZeroDivisionError):
        with tracer.span("outer"):
            with tracer.span("inner"):
                1 / 0
    inner, outer = exporter.spans
    for span in (inner, outer):
        assert span.status is Status.ERROR
        assert span.status_message == "ZeroDivisionError: division by zero"
        assert span.events[0] == ("exception", {"type": "ZeroDivisionError", "message": "division by zero"})
    assert current_span() is None


def test_explicit_status_is_kept(tracer, exporter):
    with tracer.span("soft-failure") as span:
        span.set_status(Status.ERROR, "upstream returned nothing")
    assert exporter.get("soft-failure").status is Status.ERROR
    assert exporter.get("soft-failure").status_message == "upstream returned nothing"


def test_current_span_follows_nesting(tracer):
    assert current_span() is None
    with tracer.span("outer") as outer:
        assert current_span() is outer
        with tracer.span("inner") as inner:
            assert current_span() is inner
        assert current_span() is outer
    assert current_span() is None


def test_attribute_values_are_validated(tracer):
    with tracer.span("x") as span:
        for value in [None, {"a": 1}, object(), [1, "two"]]:
            with pytest.raises(TypeError):
                span.set_attribute("key", value)
        with pytest.raises(TypeError):
            span.set_attribute("", 1)
        span.set_attribute("tags", ["a", "b"])
    assert span.attributes == {"tracer": "test", "tags": ("a", "b")}


def test_decorator_wraps_sync_function(tracer, exporter):
    @tracer.traced()
    def add(a, b):
        return a + b

    @tracer.traced("custom", kind="io")
    def fail():
        raise RuntimeError("boom")

    with tracer.span("request") as request:
        assert add(2, 3) == 5
        with pytest.raises(RuntimeError):
            fail()
    add_span = exporter.get("test_decorator_wraps_sync_function.<locals>.add")
    assert add_span.parent_id == request.span_id and add_span.status is Status.OK
    assert exporter.get("custom").attributes["kind"] == "io"
    assert exporter.get("custom").status is Status.ERROR
    assert add.__name__ == "add"


def test_decorator_wraps_async_function(tracer, exporter):
    @tracer.traced("fetch")
    async def fetch(x):
        await asyncio.sleep(0)
        assert current_span().name == "fetch"
        return x * 2

    async def main():
        return await asyncio.gather(fetch(1), fetch(2))

    assert asyncio.run(main()) == [2, 4]
    first, second = exporter.named("fetch")
    assert first.trace_id != second.trace_id and first.parent_id is None


def test_threads_do_not_inherit_each_others_spans(tracer, exporter):
    def work():
        with tracer.span("in-thread"):
            pass

    with tracer.span("main") as main:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert exporter.get("in-thread").parent_id is None
    assert exporter.get("in-thread").trace_id != main.trace_id


def test_failing_exporter_does_not_break_code(exporter, caplog):
    class Broken:
        def export(self, span):
            raise OSError("collector down")

    tracer = Tracer("t", exporters=[Broken(), exporter])
    with caplog.at_level(logging.ERROR, logger="observability.tracing"):
        with tracer.span("still-works"):
            pass
    assert exporter.get("still-works").status is Status.OK
    assert "span exporter" in caplog.text


def test_default_exporters_and_exporter_lookup(exporter):
    tracer = get_tracer("svc")
    set_default_exporters([exporter])
    try:
        with tracer.span("dup"):
            pass
        with tracer.span("dup"):
            pass
    finally:
        set_default_exporters([])
    assert len(exporter.named("dup")) == 2
    with pytest.raises(LookupError):
        exporter.get("dup")
    with pytest.raises(LookupError):
        exporter.get("missing")
    exporter.clear()
    assert exporter.spans == []
