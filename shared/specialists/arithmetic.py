"""Arithmetic specialist: finds an expression in a question and evaluates it
by walking its AST (no eval), with bounds against huge results."""

import ast
import math
import operator
import re

from .base import Answer

MAX_EXPRESSION = 200
MAX_EXPONENT = 100
MAX_MAGNITUDE = 10**100

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS = {"sqrt": math.sqrt, "abs": abs}

_WORDS = [
    (r"square root of\s+(\d+(?:\.\d+)?)", r" sqrt(\1) "),
    (r"\bdivided by\b|÷", " / "),
    (r"\bmultiplied by\b|\btimes\b|×|(?<=\d)\s*x\s*(?=\d)", " * "),
    (r"\bplus\b|\badded to\b", " + "),
    (r"\bminus\b", " - "),
    (r"\bto the power of\b|\^", " ** "),
    (r"\bsquared\b", " ** 2 "),
    (r"\bcubed\b", " ** 3 "),
    (r"\bmod(?:ulo)?\b", " % "),
]
_EXPR = re.compile(r"(?:sqrt|abs|[\d.()+\-*/%\s])+")


class MathError(ValueError):
    pass


def _eval(node: ast.AST) -> int | float:
    match node:
        case ast.Constant(value=value) if type(value) in (int, float):
            return value
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
            return _UNARY[type(op)](_eval(operand))
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINOPS:
            lhs, rhs = _eval(left), _eval(right)
            if isinstance(op, ast.Pow) and abs(rhs) > MAX_EXPONENT:
                raise MathError("exponent too large")
            try:
                result = _BINOPS[type(op)](lhs, rhs)
            except ZeroDivisionError:
                raise MathError("division by zero") from None
            except OverflowError:
                raise MathError("result too large") from None
            if isinstance(result, complex):
                raise MathError("result is not a real number")
            if abs(result) > MAX_MAGNITUDE:
                raise MathError("result too large")
            return result
        case ast.Call(func=ast.Name(id=name), args=[arg], keywords=[]) if name in _FUNCS:
            try:
                return _FUNCS[name](_eval(arg))
            except ValueError:
                raise MathError(f"{name} of a negative number") from None
    raise MathError(f"unsupported syntax: {type(node).__name__}")


def evaluate(expression: str) -> int | float:
    """Evaluate arithmetic: numbers, + - * / // % **, unary signs, parentheses,
    sqrt() and abs(). Anything else raises MathError."""
    if len(expression) > MAX_EXPRESSION:
        raise MathError("expression too long")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise MathError("not a valid expression") from None
    return _eval(tree.body)


def format_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def extract_expression(question: str) -> str | None:
    """The longest arithmetic-looking span of the question, words turned into operators."""
    text = question.lower()
    for pattern, repl in _WORDS:
        text = re.sub(pattern, repl, text)
    candidates = [" ".join(m.group().split()) for m in _EXPR.finditer(text)]
    candidates = [c.strip(" .") for c in candidates if any(ch.isdigit() for ch in c)]
    return max(candidates, key=len) if candidates else None


class MathSpecialist:
    name = "math"

    def answer(self, question: str) -> Answer:
        expression = extract_expression(question)
        if expression is None:
            return Answer(self.name, "I couldn't find a calculation in that question.", 0.0)
        try:
            value = evaluate(expression)
        except MathError as exc:
            return Answer(self.name, f"I can't compute {expression}: {exc}.", 0.1)
        shown = ast.unparse(ast.parse(expression, mode="eval"))
        return Answer(self.name, f"{shown} = {format_number(value)}", 0.95)
