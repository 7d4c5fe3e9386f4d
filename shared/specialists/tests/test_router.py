import pytest

from observability import InMemoryExporter, Status, Tracer
from specialists import Answer, IntentRouter, SpecialistHub


@pytest.fixture
def exporter():
    return InMemoryExporter()


@pytest.fixture
def hub(exporter):
    return SpecialistHub(tracer=Tracer("test", exporters=[exporter]))


def test_router_picks_intent():
    router = IntentRouter()
    cases = {"What is 12 * (3 + 4)?": "math",
             "Calculate 10 divided by 4": "math",
             "When did the French Revolution begin?": "history",
             "Which king sealed the Magna Carta in 1215?": "history",
             "What is the plural of mouse?": "english",
             "What does simile mean? Is it a word?": "english"}
    for question, intent in cases.items():
        route = router.route(question)
        assert route.intent == intent and 0.5 <= route.confidence < 1.0, (question, route)


def test_router_confidence_reflects_evidence():
    router = IntentRouter()
    assert router.route("Tell me a joke").intent is None and router.route("Tell me a joke").confidence == 0.0
    weak = router.route("What happened in 1066?")
    assert weak.intent == "history" and weak.confidence == pytest.approx(0.5 / 1.5, abs=1e-4)
    mixed = router.route("In 1914, what was 3 + 4?")
    assert mixed.intent == "math" and mixed.scores == {"math": 3.0, "history": 0.5, "english": 0.0}
    assert mixed.confidence == pytest.approx(3.0 / 4.5, abs=1e-4)


def test_hub_answers_and_traces_routing(hub, exporter):
    answer = hub.ask("What is 12 * (3 + 4)?")
    assert answer.specialist == "math" and answer.text == "12 * (3 + 4) = 84"
    assert answer.confidence == pytest.approx(0.75 * 0.95, abs=1e-4)
    root = exporter.get("specialists.ask")
    assert root.attributes["route.intent"] == "math" and root.attributes["route.confidence"] == 0.75
    assert exporter.children(root) == [exporter.get("specialists.answer")]
    assert exporter.get("specialists.answer").attributes["specialist"] == "math"


def test_hub_without_fallback_admits_uncertainty(hub, exporter):
    answer = hub.ask("What happened in 1066?")
    assert answer.specialist == "none" and answer.confidence == 0.0
    assert exporter.get("specialists.ask").attributes["route.fallback"] is True
    assert exporter.named("specialists.answer") == []


def test_hub_uses_fallback_specialist_when_unsure(exporter):
    class Echo:
        name = "echo"

        def answer(self, question):
            return Answer(self.name, question.upper(), 0.6)

    hub = SpecialistHub(tracer=Tracer("t", exporters=[exporter]), fallback=Echo())
    assert hub.ask("tell me a joke") == Answer("echo", "TELL ME A JOKE", 0.6)
    assert exporter.get("specialists.answer").attributes["specialist"] == "echo"


def test_hub_records_specialist_failure(exporter):
    class Broken:
        name = "math"

        def answer(self, question):
            raise RuntimeError("specialist crashed")

    hub = SpecialistHub({"math": Broken()}, tracer=Tracer("t", exporters=[exporter]))
    with pytest.raises(RuntimeError):
        hub.ask("What is 1 + 1?")
    assert exporter.get("specialists.ask").status is Status.ERROR
    assert exporter.get("specialists.answer").status_message == "RuntimeError: specialist crashed"
