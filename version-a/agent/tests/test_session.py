import itertools

import pytest

from agent import InvalidTransition, Session, SessionState as S


def test_full_conversation_cycle_is_recorded():
    ticks = itertools.count()
    session = Session("s1", clock=lambda: float(next(ticks)))
    for state in [S.LISTENING, S.THINKING, S.SPEAKING, S.LISTENING, S.THINKING, S.SPEAKING, S.IDLE]:
        session.transition(state)
    session.end()
    assert session.ended
    assert [(old.value, new.value) for old, new, _ in session.history[:3]] == \
        [("idle", "listening"), ("listening", "thinking"), ("thinking", "speaking")]
    assert [t for _, _, t in session.history] == [float(i) for i in range(8)]


def test_invalid_transitions_raise_and_keep_state():
    cases = [([], S.THINKING), ([], S.SPEAKING), ([S.LISTENING], S.SPEAKING),
             ([S.LISTENING, S.THINKING], S.IDLE), ([S.LISTENING], S.LISTENING)]
    for path, target in cases:
        session = Session()
        for state in path:
            session.transition(state)
        before = session.state
        with pytest.raises(InvalidTransition) as err:
            session.transition(target)
        assert session.state is before and (err.value.current, err.value.target) == (before, target)
        assert str(err.value) == f"cannot go from {before.value} to {target.value}"


def test_ended_is_terminal_and_reachable_from_everywhere():
    for path in ([], [S.LISTENING], [S.LISTENING, S.THINKING], [S.LISTENING, S.THINKING, S.SPEAKING]):
        session = Session()
        for state in path:
            session.transition(state)
        session.end()
        assert all(not session.can(state) for state in S)
        with pytest.raises(InvalidTransition):
            session.transition(S.IDLE)


def test_listeners_see_every_change_and_string_states_are_accepted():
    session, seen = Session(), []
    session.on_change(lambda old, new: seen.append((old, new)))
    session.transition("listening")
    session.transition(S.IDLE)
    assert seen == [(S.IDLE, S.LISTENING), (S.LISTENING, S.IDLE)]
    with pytest.raises(ValueError):
        session.transition("dancing")


def test_sessions_get_unique_ids():
    assert Session().id != Session().id
    assert Session("fixed").id == "fixed"
