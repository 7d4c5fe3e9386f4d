import sys

import pytest


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")


def test_passes(record_property):
    record_property("ticket", "XT-1")
    print("out: <tag> & \"quotes\" \x1b[31mred\x1b[0m caf\u00e9")
    print("err line", file=sys.stderr)


def test_fails():
    assert 1 + 1 == 3, "math & <logic>"


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


def test_skip_then_teardown_error(broken_teardown):
    pytest.skip("skipping")


def test_setup_error(broken_setup):
    pass


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False
