import pytest

from agent import GuardedAgent, InvalidTransition, Session, SessionState as S
from guardrail import Category
from observability import InMemoryExporter, Tracer
from specialists import Answer


class FakeHub:
    def __init__(self, text="Fine.", confidence=0.9):
        self.questions, self.text, self.confidence = [], text, confidence

    def ask(self, question):
        self.questions.append(question)
        return Answer("fake", self.text, self.confidence)


def listening_session():
    session = Session()
    session.transition(S.LISTENING)
    return session


def test_answers_a_math_question_and_records_the_turn():
    session = listening_session()
    result = GuardedAgent().handle_turn(session, "What is 12 * (3 + 4)?")
    assert result.reply == "12 * (3 + 4) = 84" and result.specialist == "math"
    assert not result.blocked and not result.escalate
    assert session.state is S.SPEAKING
    assert [t.reply for t in session.turns] == ["12 * (3 + 4) = 84"]


def test_turn_requires_a_listening_session():
    session = Session()
    with pytest.raises(InvalidTransition):
        GuardedAgent(hub=FakeHub()).handle_turn(session, "What is 1 + 1?")
    assert session.state is S.IDLE and session.turns == []


def test_self_harm_gets_support_and_escalation_without_routing():
    hub = FakeHub()
    result = GuardedAgent(hub=hub).handle_turn(listening_session(), "I want to end my life")
    assert result.blocked and result.escalate
    assert result.categories == [Category.SELF_HARM]
    assert "teacher" in result.reply and hub.questions == []


def test_harmful_input_is_refused_without_escalation():
    hub = FakeHub()
    result = GuardedAgent(hub=hub).handle_turn(listening_session(), "How do I stab someone?")
    assert result.blocked and not result.escalate and result.specialist == "guardrail"
    assert result.categories == [Category.VIOLENCE] and hub.questions == []


def test_personal_data_is_redacted_before_routing():
    hub = FakeHub()
    result = GuardedAgent(hub=hub).handle_turn(listening_session(), "I'm ann@school.org, what is 2 + 2?")
    assert hub.questions == ["I'm [EMAIL], what is 2 + 2?"]
    assert result.categories == [Category.PERSONAL_DATA] and not result.blocked


def test_harmful_specialist_reply_is_withheld_and_escalated():
    hub = FakeHub(text="They decided to murder the king.")
    result = GuardedAgent(hub=hub).handle_turn(listening_session(), "Tell me about the king")
    assert result.blocked and result.escalate and result.specialist == "fake"
    assert "murder" not in result.reply


def test_unsure_answers_are_escalated():
    session = listening_session()
    result = GuardedAgent().handle_turn(session, "Tell me a joke")
    assert result.specialist == "none" and result.confidence == 0.0
    assert result.escalate and not result.blocked


def test_failing_specialist_drops_the_turn():
    class Crash:
        def ask(self, question):
            raise RuntimeError("down")

    session = listening_session()
    with pytest.raises(RuntimeError):
        GuardedAgent(hub=Crash()).handle_turn(session, "What is 1 + 1?")
    assert session.state is S.LISTENING and session.turns == []


def test_speak_streams_safe_sentences_then_listens_again():
    agent, session = GuardedAgent(hub=FakeHub()), listening_session()
    agent.handle_turn(session, "hello")
    chunks = ["Write to me at bo", "b@x.io. Rome fell in 4", "76. Then I'll kill", " you. Bye."]
    assert list(agent.speak(session, chunks)) == ["Write to me at [EMAIL].", "Rome fell in 476."]
    assert session.state is S.LISTENING
    with pytest.raises(InvalidTransition):
        agent.speak(session, ["Too late."])


def test_turn_is_traced_with_specialist_spans_nested():
    exporter = InMemoryExporter()
    agent = GuardedAgent(tracer=Tracer("agent", exporters=[exporter]))
    session = listening_session()
    agent.handle_turn(session, "What is the plural of mouse?")
    turn = exporter.get("agent.turn")
    assert turn.attributes["session_id"] == session.id and turn.attributes["specialist"] == "english"
    assert exporter.get("specialists.ask").parent_id == turn.span_id
    assert {s.trace_id for s in exporter.spans} == {turn.trace_id}
