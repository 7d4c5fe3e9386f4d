import pytest

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

def test_fail_then_teardown(broken_teardown):
    print("hello out")
    assert 1 == 2, "first line\nsecond line"

@pytest.mark.parametrize("x", [1, 2])
def test_param(x):
    pass

@pytest.mark.skip(reason="nope")
def test_skipped():
    pass

def test_bell():
    print("a\x07b\x00c")
