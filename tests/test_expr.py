"""The expression grammar (tracer/scenario/_expr.py): what it accepts, where it says a text is
wrong, and that its evaluation means what Python means by the same text.

The property tests generate expressions from the grammar (numbers, names, operators,
parentheses) and compare :func:`evaluator` with Python's own evaluation of the same text over
the same locals; arbitrary text must give an :class:`Expr` or an :class:`ExprError`, never
another exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.scenario._expr import EvalError, Expr, ExprError, evaluator, parse_expr

LOCALS = {"a": 3, "b": -7, "c": 0, "big": 2**62, "f": 2.5}


def sync_loader(env: dict[str, Any], log: list[str] | None = None) -> Any:
    def load(name: str) -> tuple[Callable[[Any], Any], bool]:
        def get(_actor: Any) -> Any:
            if log is not None:
                log.append(name)
            return env[name]
        return get, False
    return load


def async_loader(env: dict[str, Any], log: list[str] | None = None) -> Any:
    def load(name: str) -> tuple[Callable[[Any], Any], bool]:
        async def get(_actor: Any) -> Any:
            if log is not None:
                log.append(name)
            return env[name]
        return get, True
    return load


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (our loaders do not) to its value."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the evaluation suspended")  # pragma: no cover


def evaluate(text: str, env: dict[str, Any] | None = None, *, use_async: bool = False,
             log: list[str] | None = None) -> Any:
    env = LOCALS if env is None else env
    load = async_loader(env, log) if use_async else sync_loader(env, log)
    expr = parse_expr(text)
    fn, is_async = evaluator(expr, load)
    assert is_async is (use_async and bool(expr.names))  # (no name to await: a plain function)
    return drive(fn(None)) if is_async else fn(None)


# --- semantics --------------------------------------------------------------------------------

@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize(("text", "expected"), [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 // 2", 3), ("-7 // 2", -4), ("7 % 3", 1),
    ("-7 % 3", 2), ("7 / 2", 3.5), ("a * b - c", -21), ("- a", -3), ("+a", 3),
    ("1 < 2 < 3", True), ("1 < 3 < 2", False), ("a == 3 != b", True), ("a >= 3 > b", True),
    ("not a", False), ("not c", True), ("c or a", 3), ("a and b", -7), ("c and a", 0),
    ("true and not false", True), ("null == null", True), ("'ab' + 'cd'", "abcd"),
    ("len('hello')", 5), ("'ab' < 'b'", True), ("f * 2", 5.0), ("a == 3.0", True),
    ("2 - 3 - 4", -5),
])
def test_values(text: str, expected: Any, use_async: bool) -> None:
    got = evaluate(text, use_async=use_async)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("use_async", [False, True])
def test_each_occurrence_is_one_read_in_order(use_async: bool) -> None:
    log: list[str] = []
    assert evaluate("b + a * a - (c + b)", log=log, use_async=use_async) == -7 + 9 - (0 - 7)
    assert log == ["b", "a", "a", "c", "b"]


@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize(("text", "reads"), [
    ("c and a", ["c"]), ("a or b", ["a"]), ("c or a", ["c", "a"]), ("a and b", ["a", "b"]),
    ("false and a == 1", []), ("true or a", []), ("1 > 2 > a", []), ("a < 0 < b", ["a"]),
    ("(c and a) or b", ["c", "b"]),
])
def test_short_circuit_skips_the_reads_it_does_not_need(text: str, reads: list[str],
                                                         use_async: bool) -> None:
    log: list[str] = []
    evaluate(text, log=log, use_async=use_async)
    assert log == reads


@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize(("text", "words"), [
    ("1 / c", ["1 / 0", "division by zero"]),
    ("a // c", ["3 // 0", "division by zero"]), ("a % c", ["division by zero"]),
    ("'a' < 1", ["cannot compare", "'a' < 1"]), ("'a' - 1", ["'-' needs two numbers"]),
    ("'a' + 1", ["'+' joins two strings"]), ("len(a)", ["len(3)", "string or a list"]),
    ("- 'x'", ["needs a number"]), ("big * big", ["64-bit"]), ("null < 1", ["cannot compare"]),
    ("true + 1", ["'+' joins"]),
    ("-9223372036854775808 - 1", ["64-bit"]), ("-18446744073709551615", ["64-bit"]),
    ("1e308 * 10", ["not a finite number"]),
])
def test_eval_errors_show_the_values(text: str, words: list[str], use_async: bool) -> None:
    with pytest.raises(EvalError) as info:
        evaluate(text, use_async=use_async)
    for word in words:
        assert word in str(info.value)


def test_names_are_listed_once_in_order_and_constants_are_not_names() -> None:
    e = parse_expr("b + a * b and true or null == x")
    assert e.names == ("b", "a", "x")
    assert parse_expr("  a\n  + 1\n").names == ("a",)  # a YAML block's spaces and lines


# --- where a bad expression is wrong ----------------------------------------------------------

@pytest.mark.parametrize(("text", "col", "words"), [
    ("a**b", 2, "'**'"), ("a ** b", 3, "'**'"), ("x & y", 3, "write 'and'"),
    ("x | y", 3, "write 'or'"), ("x && y", 3, "write 'and'"), ("x || y", 3, "write 'or'"),
    ("!x", 1, "not x"), ("x = 1", 3, "'=='"), ("x is 1", 3, "'is'"), ("a < b in c", 7, "'in'"),
    ("counter == (1", 12, "never closed"), ("(a))", 4, "closes nothing"),
    ("1 +", 3, "ends too early"), ("a or", 4, "after 'or'"), ("a b", 3, "operator is missing"),
    ("a.b", 2, "attribute"), ("a[1]", 2, "subscript"), ("f(x)", 1, "len(x)"),
    ("len(x, y)", 1, "one argument"), ("1 if x else 2", 1, "not in the grammar"),
    ("[1, 2]", 1, "a list"), ("$x", 1, "'$'"), ("x == '&&' and y ** 2", 17, "'**'"),
    ("99999999999999999999999", 1, "64 bits"), ("1e999", 1, "finite"), ("1j", 1, "complex"),
    ("", 1, "empty"), ("   ", 1, "empty"), ("lambda: 1", 1, "lambda"), ("~x", 1, "'~'"),
    ("x := 1", 1, "not in the grammar"), ("f'{x}'", 1, "f-string"),
])
def test_errors_say_where(text: str, col: int, words: str) -> None:
    with pytest.raises(ExprError) as info:
        parse_expr(text)
    assert info.value.col == col, str(info.value)
    assert words in info.value.reason
    assert f"column {col}" in str(info.value)


def test_a_multiline_expression_says_line_and_column() -> None:
    with pytest.raises(ExprError) as info:
        parse_expr("counter == 1 and\ncounter ** 2\n")
    assert "at line 2, column 9" in str(info.value)


def test_limits() -> None:
    with pytest.raises(ExprError, match="longer than 2000"):
        parse_expr("1 + " * 600 + "1")
    with pytest.raises(ExprError, match=r"more than 400 parts"):
        parse_expr(" + ".join(["a"] * 300))
    with pytest.raises(ExprError, match=r"too deeply nested|too many nested"):
        parse_expr("(" * 300 + "1" + ")" * 300)
    deep = "-" * 390 + "1"  # within the limits: evaluates without a RecursionError
    assert evaluate(deep) == 1 and evaluate(deep, use_async=True) == 1


# --- properties -------------------------------------------------------------------------------

NAMES = ("a", "b", "c", "big", "f")
ENV_INTS = st.integers(min_value=-(2**40), max_value=2**40)


def _numbers() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(0, 10**6).map(str),
                     st.sampled_from(["0", "1", "2", "0.5", "2.5", "1e3"]))


def _numeric(leaves: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%"]), inner)
            .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda x: f"-{x}"),
            inner.map(lambda x: f"({x})"),
        ),
        max_leaves=8,
    )


NUMERIC = _numeric(st.one_of(_numbers(), st.sampled_from(NAMES)))
COMPARISON = st.lists(NUMERIC, min_size=2, max_size=4).flatmap(
    lambda parts: st.lists(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
                           min_size=len(parts) - 1, max_size=len(parts) - 1).map(
        lambda ops: " ".join(p for pair in zip(parts, [*ops, ""], strict=True) for p in pair)))
BOOLEAN = st.recursive(
    st.one_of(COMPARISON, NUMERIC),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda x: f"(not {x})"),
    ),
    max_leaves=6,
)


def _python(text: str, env: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", eval(text, {"__builtins__": {}}, dict(env))
    except ZeroDivisionError:
        return "zero", None
    except OverflowError:
        return "overflow", None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(NUMERIC, BOOLEAN), a=ENV_INTS, b=ENV_INTS, c=st.sampled_from([0, 1, -1]),
       use_async=st.booleans())
def test_evaluator_agrees_with_python(text: str, a: int, b: int, c: int,
                                      use_async: bool) -> None:
    env = {**LOCALS, "a": a, "b": b, "c": c}
    kind, expected = _python(text, env)
    try:
        got = evaluate(text, env, use_async=use_async)
    except EvalError as exc:
        msg = str(exc)
        if "division by zero" in msg:
            # the same division Python met, unless a value beyond 64 bits came first there
            assert kind in ("zero", "value", "overflow"), (text, kind)
            return
        assert "64-bit" in msg or "finite" in msg, msg
        return  # a value beyond what a trace holds: refused (Python's numbers are unbounded)
    assert kind == "value", (text, kind, got)
    if isinstance(expected, float) and math.isnan(expected):  # pragma: no cover
        assert isinstance(got, float) and math.isnan(got)
        return
    assert got == expected and type(got) is type(expected), (text, got, expected)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(NUMERIC, BOOLEAN))
def test_generated_expressions_parse_and_name_only_their_names(text: str) -> None:
    e = parse_expr(text)
    assert set(e.names) <= set(NAMES)
    assert all(e.names.count(n) == 1 for n in e.names)


TOKENS = st.sampled_from(["a", "b", "1", "2.5", "'s'", "true", "null", "len", "(", ")", "+",
                          "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">=", "=", "and",
                          "or", "not", "&&", "||", "!", ".", "[", "]", ",", "if", "else",
                          "lambda", ":", "is", "in", "@", "~", "\n", " ", "$", "\"", "#"])


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(TOKENS, max_size=20))
def test_token_soup_gives_an_expression_or_an_expr_error(parts: list[str]) -> None:
    text = " ".join(parts)
    try:
        e = parse_expr(text)
    except ExprError as exc:
        assert 1 <= exc.col <= max(1, len(text)), (text, exc.col)
        return
    assert isinstance(e, Expr)


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_gives_an_expression_or_an_expr_error(text: str) -> None:
    try:
        e = parse_expr(text)
    except ExprError as exc:
        assert 1 <= exc.col <= max(1, len(exc.text)), (text, exc.col)
        return
    assert isinstance(e, Expr)
    # and what parses evaluates to a value or an EvalError, never another exception
    env = dict.fromkeys(e.names, 1)
    try:
        evaluate(text, env)
    except EvalError:
        pass


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="()+-*/%<>=! andornt0123456789.'\"xy", max_size=200))
def test_operator_soup_is_an_expression_or_an_expr_error(text: str) -> None:
    try:
        parse_expr(text)
    except ExprError:
        pass
