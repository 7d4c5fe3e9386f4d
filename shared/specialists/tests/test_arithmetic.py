import pytest

from specialists import MathError, MathSpecialist, evaluate
from specialists.arithmetic import extract_expression


def test_evaluate():
    cases = {"2 + 3 * 4": 14, "(2 + 3) * 4": 20, "7 / 2": 3.5, "7 // 2": 3, "-3 ** 2": -9,
             "17 % 5": 2, "sqrt(16) + abs(-2)": 6.0, "0.1 + 0.2": pytest.approx(0.3)}
    assert {expr: evaluate(expr) for expr in cases} == cases


def test_evaluate_rejects_anything_but_arithmetic():
    for expression in ["__import__('os').system('true')", "open('x')", "x + 1", "(1).real", "[1, 2]",
                       "'a' * 3", "lambda: 1", "True + 1", "1j * 1j", "sqrt(4, 2)", "1 < 2"]:
        with pytest.raises(MathError, match="unsupported syntax"):
            evaluate(expression)


def test_evaluate_errors():
    cases = {"1 / 0": "division by zero", "5 % 0": "division by zero", "2 ** 101": "exponent too large",
             "9 ** 9 ** 9": "exponent too large",
             "10 ** 99 * 1000": "result too large", "sqrt(-1)": "negative", "(-8) ** 0.5": "not a real",
             "1 +": "not a valid expression", "1" + " + 1" * 100: "too long"}
    for expression, message in cases.items():
        with pytest.raises(MathError, match=message):
            evaluate(expression)


def test_extract_expression_from_words():
    assert extract_expression("What is 3 plus 4 times 2?") == "3 + 4 * 2"
    assert extract_expression("what's 12 x 3, please") == "12 * 3"
    assert extract_expression("Calculate 10 divided by 4.") == "10 / 4"
    assert extract_expression("What is the square root of 81?") == "sqrt(81)"
    assert extract_expression("Why is the sky blue?") is None


def test_math_specialist_answers():
    math = MathSpecialist()
    answer = math.answer("What is 7 squared minus 1?")
    assert (answer.specialist, answer.text, answer.confidence) == ("math", "7 ** 2 - 1 = 48", 0.95)
    assert math.answer("What is 1 / 3?").text == "1 / 3 = 0.3333333333"
    assert math.answer("What is 5 / 0?").confidence == 0.1
    assert not math.answer("What is love?").answered
