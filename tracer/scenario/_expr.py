"""Expressions of the scenario language: a small, safe grammar, parsed without ``eval``.

An expression is a string: numbers, strings in quotes, ``true``/``false``/``null``, names,
``+ - * / // %``, ``== != < <= > >=`` (chains too, as in Python), ``and or not``, parentheses
and ``len(x)``. Python's own parser reads it (``ast.parse(mode="eval")``) and every node is
checked against a whitelist; what is not in the grammar is refused with the column where it
starts. The tree is then turned into nested closures (:func:`evaluator`): nothing is compiled
to Python code, nothing can call, import or look up an attribute.

Names are the actor's locals or the scenario's shared variables; which one is decided by the
checker, and the engine gives :func:`evaluator` a loader per name. A shared variable is one
traced ``read`` each time it is evaluated; ``and``/``or`` short-circuit as in Python, so a
read on the side not evaluated is not made (as in the code the scenario models). Values are
what a trace holds: numbers are checked to stay within 64-bit integers and finite floats,
strings and lists within :data:`MAX_LEN`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_TEXT = 2_000  # characters of one expression
MAX_NODES = 400  # nodes of one expression's tree
MAX_LEN = 100_000  # characters of a string, items of a list an expression makes
CONSTANTS = {"true": True, "false": False, "null": None,
             "True": True, "False": False, "None": None}
FUNCTIONS = ("len",)


class ExprError(ValueError):
    """An expression that is not in the grammar: ``col`` (1-based, in the string) is where."""

    def __init__(self, text: str, col: int, message: str) -> None:
        self.text = text
        self.col = col
        self.reason = message
        before = text[:col - 1]
        where = (f"line {before.count(chr(10)) + 1}, column {col - 1 - before.rfind(chr(10))}"
                 if "\n" in text.rstrip("\n") else f"column {col}")
        super().__init__(f"bad expression {text!r} at {where}: {message}")


class EvalError(Exception):
    """An expression that cannot be evaluated with the values it met (``1 / 0``, ``"a" < 1``)."""


@dataclass(frozen=True)
class Expr:
    """A parsed expression: its text, its checked tree and the names it uses (each name once,
    in order of first appearance)."""

    text: str
    tree: ast.expr
    names: tuple[str, ...]


_BINOPS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul), ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv), ast.Mod: ("%", operator.mod),
}
_CMPOPS: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq), ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt), ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt), ast.GtE: (">=", operator.ge),
}
_REFUSED_OPS = {
    ast.Pow: "'**' is not in the grammar: multiply (x * x); the operators are + - * / // %",
    ast.BitAnd: "'&' is not in the grammar: write 'and'",
    ast.BitOr: "'|' is not in the grammar: write 'or'",
    ast.BitXor: "'^' is not in the grammar", ast.LShift: "'<<' is not in the grammar",
    ast.RShift: "'>>' is not in the grammar", ast.MatMult: "'@' is not in the grammar",
    ast.Is: "'is' is not in the grammar: write '==' or '!='",
    ast.IsNot: "'is not' is not in the grammar: write '!='",
    ast.In: "'in' is not in the grammar", ast.NotIn: "'not in' is not in the grammar",
    ast.Invert: "'~' is not in the grammar",
}
_NODE_NAMES = {
    ast.Attribute: "an attribute ('.')", ast.Subscript: "a subscript ('[...]')",
    ast.IfExp: "'x if c else y'", ast.Lambda: "a lambda", ast.List: "a list",
    ast.Tuple: "a tuple", ast.Dict: "a mapping", ast.Set: "a set",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string", ast.Starred: "'*'", ast.NamedExpr: "':='",
    ast.Await: "'await'", ast.Yield: "'yield'", ast.YieldFrom: "'yield'",
}
_SYNTAX_HINTS = (("&&", "write 'and' for '&&'"), ("||", "write 'or' for '||'"),
                 ("!", "write 'not x' for '!x' ('!=' is fine)"),
                 ("===", "write '=='"))


def _col(text: str, line: int, offset: int) -> int:
    """The 1-based column in ``text`` of ``offset`` (0-based, in UTF-8 bytes as ast gives it)
    on 1-based ``line`` of ``"(" + text + ")"``, which is what is parsed."""
    lines = f"({text})".split("\n")
    line = min(max(line, 1), len(lines))
    before = sum(len(x) + 1 for x in lines[:line - 1])
    here = lines[line - 1].encode()[:offset].decode(errors="ignore")
    return max(1, before + len(here))  # (the "(" takes the place of column 0)


_STRING = re.compile(r"'(?:[^'\\\n]|\\.)*'" + r'|"(?:[^"\\\n]|\\.)*"')


def _blank_strings(text: str) -> str:
    """``text`` with the inside of its string literals blanked (same length): a hint looks
    for tokens such as ``&&`` or ``(`` outside strings only."""
    return _STRING.sub(lambda m: m.group()[0] + " " * (len(m.group()) - 2) + m.group()[-1], text)


def _unbalanced(code: str) -> tuple[int, str] | None:
    """The first ``)`` without its ``(``, or the ``(`` never closed (1-based column), in
    ``code`` (strings blanked)."""
    opened: list[int] = []
    for i, ch in enumerate(code):
        if ch == "(":
            opened.append(i)
        elif ch == ")":
            if not opened:
                return i + 1, "this ')' closes nothing: remove it, or add its '('"
            opened.pop()
    if opened:
        return opened[-1] + 1, "this '(' is never closed: add its ')'"
    return None


def _syntax_hint(text: str, exc: SyntaxError) -> tuple[int, str]:
    code = _blank_strings(text)
    for token, hint in _SYNTAX_HINTS:
        at = code.find(token)
        if at >= 0 and not (token == "!" and code[at:at + 2] == "!="):
            return at + 1, hint
    unbalanced = _unbalanced(code)
    if unbalanced is not None and "unterminated" not in (exc.msg or ""):
        return unbalanced
    bare = re.search(r"(?<![=!<>])=(?!=)", code)
    if bare:
        return bare.start() + 1, "'=' assigns nothing here: write '==' to compare"
    msg = (exc.msg or "invalid syntax").split(". Perhaps")[0]
    lines = f"({text})".split("\n")
    line = min(max(exc.lineno or 1, 1), len(lines))
    col = sum(len(x) + 1 for x in lines[:line - 1]) + (exc.offset or 1) - 1
    if "forgot a comma" in (exc.msg or ""):
        # two values side by side: Python points at the first, the missing operator follows it
        after = re.match(r"\s*(?:[\w.]+|'[^']*'|\"[^\"]*\")\s*", text[max(col, 1) - 1:])
        col = max(col, 1) + (after.end() if after else 0)
        return min(col, len(text)), "an operator is missing between two values here"
    if col > len(text.rstrip()):
        tail = re.search(r"(\w+|\S)\s*$", text)
        last = tail.group(1) if tail else text
        return max(1, len(text.rstrip())), (f"the expression ends too early, after {last!r}: "
                                            "a value is missing")
    col = max(1, col)
    if msg == "invalid syntax":
        msg = f"{text[col - 1]!r} is not in the grammar here"
    return col, msg


@lru_cache(maxsize=4096)
def parse_expr(text: str) -> Expr:
    """Parse and check ``text``; raise :class:`ExprError` (with the column) when it is not in
    the grammar."""
    if not isinstance(text, str):
        raise ExprError(str(text), 1, "an expression is a string")
    if len(text) > MAX_TEXT:
        raise ExprError(text[:40] + "...", 1, f"longer than {MAX_TEXT} characters")
    if not text.strip():
        raise ExprError(text, 1, "the expression is empty")
    try:
        # in parentheses: leading spaces and a YAML block's line breaks are fine
        with warnings.catch_warnings():  # ("\\d" in a string: not the user's business here)
            warnings.simplefilter("ignore")
            tree = ast.parse(f"({text})", mode="eval")
    except SyntaxError as exc:
        col, msg = _syntax_hint(text, exc)
        raise ExprError(text, col, msg) from None
    except ValueError as exc:  # (a NUL character, on some versions of Python)
        raise ExprError(text, 1, str(exc)) from None
    except (RecursionError, MemoryError):
        raise ExprError(text, 1, "too deeply nested") from None
    names: list[str] = []
    count = 0

    def bad(node: ast.AST, message: str, after: ast.AST | None = None) -> ExprError:
        """The error at ``node``, or at the operator that follows ``after`` (its left side)."""
        if after is not None:
            # the 1-based column of the character just after the left side, then past spaces
            col = _col(text, getattr(after, "end_lineno", 1), getattr(after, "end_col_offset", 0))
            while col <= len(text) and text[col - 1].isspace():
                col += 1
            return ExprError(text, min(col, len(text)), message)
        return ExprError(text, _col(text, getattr(node, "lineno", 1),
                                    getattr(node, "col_offset", 0)), message)

    def visit(node: ast.AST) -> None:
        nonlocal count
        count += 1
        if count > MAX_NODES:
            raise bad(node, f"more than {MAX_NODES} parts: split it with 'let'")
        if isinstance(node, ast.Constant):
            v: Any = node.value
            if isinstance(v, bool) or v is None or isinstance(v, (str, int, float)):
                if isinstance(v, float) and not math.isfinite(v):
                    raise bad(node, "numbers must be finite")
                if isinstance(v, int) and not isinstance(v, bool) \
                        and not -(2**63) <= v <= 2**64 - 1:
                    raise bad(node, "integers must fit in 64 bits (what a trace holds)")
                return
            raise bad(node, f"{type(v).__name__} values are not in the grammar "
                            "(numbers, strings, true, false, null)")
        if isinstance(node, ast.Name):
            if node.id not in CONSTANTS and node.id not in names:
                names.append(node.id)
            return
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise bad(node, _REFUSED_OPS.get(type(node.op), "operator not in the grammar"),
                          after=node.left)
            visit(node.left)
            visit(node.right)
            return
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Invert):
                raise bad(node, _REFUSED_OPS[ast.Invert])
            visit(node.operand)
            return
        if isinstance(node, ast.BoolOp):
            for part in node.values:
                visit(part)
            return
        if isinstance(node, ast.Compare):
            for op, left in zip(node.ops, [node.left, *node.comparators], strict=False):
                if type(op) not in _CMPOPS:
                    raise bad(node, _REFUSED_OPS.get(type(op), "comparison not in the grammar"),
                              after=left)
            visit(node.left)
            for c in node.comparators:
                visit(c)
            return
        if isinstance(node, ast.Call):
            fname = node.func.id if isinstance(node.func, ast.Name) else None
            if fname not in FUNCTIONS:
                what = f"'{fname}(...)'" if fname else "a call"
                raise bad(node, f"{what} is not in the grammar: the one function is len(x)")
            if len(node.args) != 1 or node.keywords:
                raise bad(node, "len takes one argument: len(x)")
            visit(node.args[0])
            return
        what = _NODE_NAMES.get(type(node), f"'{type(node).__name__}'")
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            raise bad(node, f"{what} is not in the grammar", after=node.value)
        raise bad(node, f"{what} is not in the grammar")

    try:
        visit(tree.body)
    except RecursionError:
        raise ExprError(text, 1, "too deeply nested") from None
    return Expr(text, tree.body, tuple(names))


# ---------------------------------------------------------------------------------------------
# Evaluation: nested closures over the checked tree

I64_MIN, U64_MAX = -(2**63), 2**64 - 1


def _fit(value: Any, text: str) -> Any:
    """``value`` if a trace can hold it, else an :class:`EvalError` saying why."""
    if type(value) is int and not I64_MIN <= value <= U64_MAX:
        raise EvalError(f"{text} = {value} is beyond what a trace holds (64-bit integers)")
    if type(value) is float and not math.isfinite(value):
        raise EvalError(f"{text} is not a finite number")
    if isinstance(value, (str, list)) and len(value) > MAX_LEN:
        raise EvalError(f"{text} makes a value longer than {MAX_LEN}")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def binop(sym: str, fn: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
    """``left sym right`` for numbers (and ``+`` of two strings or two lists), else an
    :class:`EvalError` that shows both values."""
    if _is_number(left) and _is_number(right):
        if sym in ("/", "//", "%") and right == 0:
            raise EvalError(f"{_show(left)} {sym} {_show(right)}: division by zero")
        return fn(left, right)
    if sym == "+" and type(left) is type(right) and isinstance(left, (str, list)):
        if len(left) + len(right) > MAX_LEN:
            raise EvalError(f"{_show(left)} + {_show(right)} makes a value longer than {MAX_LEN}")
        return left + right
    raise EvalError(f"cannot compute {_show(left)} {sym} {_show(right)}: "
                    + ("'+' joins two strings or two lists, the other operators need numbers"
                       if sym == "+" else f"'{sym}' needs two numbers"))


def compare(sym: str, fn: Callable[[Any, Any], Any], left: Any, right: Any) -> bool:
    if sym in ("==", "!="):
        return bool(fn(left, right))
    if (_is_number(left) and _is_number(right)) or (
            type(left) is type(right) and isinstance(left, (str, list))):
        try:
            return bool(fn(left, right))
        except TypeError:
            pass
    raise EvalError(f"cannot compare {_show(left)} {sym} {_show(right)}")


def length(v: Any) -> int:
    if isinstance(v, (str, list, dict)):
        return len(v)
    raise EvalError(f"len({_show(v)}): len needs a string or a list")


def negate(v: Any) -> Any:
    if _is_number(v):
        if type(v) is int and not I64_MIN <= -v <= U64_MAX:
            raise EvalError(f"-{_show(v)} is beyond what a trace holds (64-bit integers)")
        return -v
    raise EvalError(f"-{_show(v)}: '-' needs a number")


def plus(v: Any) -> Any:
    if _is_number(v):
        return v
    raise EvalError(f"+{_show(v)}: '+' needs a number")


Fn = Callable[[Any], Any]
AFn = Callable[[Any], Awaitable[Any]]
# a name's loader: the function that gives its value for an actor, and whether it must be
# awaited (a coroutine's read of a shared variable, which first awaits its turn)
Loader = Callable[[str], tuple[Callable[[Any], Any], bool]]


def evaluator(expr: Expr, load: Loader) -> tuple[Callable[[Any], Any], bool]:
    """``(fn, is_async)``: the function that evaluates ``expr`` for an actor (a coroutine
    function when a name's loader must be awaited), raising :class:`EvalError` when a value
    does not fit the operation. Evaluation is left to right, and ``and``/``or``
    short-circuit."""
    loaders = {name: load(name) for name in expr.names}
    is_async = any(a for _, a in loaders.values())
    text = expr.text
    if is_async:
        return _abuild(expr.tree, loaders, text), True
    return _build(expr.tree, {n: f for n, (f, _) in loaders.items()}, text), False


def _build(node: ast.expr, names: dict[str, Fn], text: str) -> Fn:
    if isinstance(node, ast.Constant):
        value = node.value
        return lambda a: value
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            const = CONSTANTS[node.id]
            return lambda a: const
        return names[node.id]
    if isinstance(node, ast.BinOp):
        sym, fn = _BINOPS[type(node.op)]
        left, right = _build(node.left, names, text), _build(node.right, names, text)
        return lambda a: _fit(binop(sym, fn, left(a), right(a)), text)
    if isinstance(node, ast.UnaryOp):
        inner = _build(node.operand, names, text)
        if isinstance(node.op, ast.Not):
            return lambda a: not inner(a)
        one = negate if isinstance(node.op, ast.USub) else plus
        return lambda a: one(inner(a))
    if isinstance(node, ast.BoolOp):
        parts = [_build(v, names, text) for v in node.values]
        if isinstance(node.op, ast.And):
            def and_(a: Any) -> Any:
                value: Any = True
                for p in parts:
                    value = p(a)
                    if not value:
                        return value
                return value
            return and_

        def or_(a: Any) -> Any:
            value: Any = False
            for p in parts:
                value = p(a)
                if value:
                    return value
            return value
        return or_
    if isinstance(node, ast.Compare):
        first = _build(node.left, names, text)
        rest = [(_CMPOPS[type(op)], _build(c, names, text))
                for op, c in zip(node.ops, node.comparators, strict=True)]

        def cmp(a: Any) -> bool:
            left = first(a)
            for (sym, fn), part in rest:
                right = part(a)
                if not compare(sym, fn, left, right):
                    return False
                left = right
            return True
        return cmp
    if isinstance(node, ast.Call):
        arg = _build(node.args[0], names, text)
        return lambda a: length(arg(a))
    raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover


def _abuild(node: ast.expr, loaders: dict[str, tuple[Fn, bool]], text: str) -> AFn:
    """:func:`_build` for an expression with a name to await; subtrees without one are plain
    functions, wrapped once."""
    def needs(n: ast.AST) -> bool:
        return any(isinstance(x, ast.Name) and loaders.get(x.id, (None, False))[1]
                   for x in ast.walk(n))

    if not needs(node):
        sync = _build(node, {n: f for n, (f, _) in loaders.items()}, text)

        async def plain(a: Any) -> Any:
            return sync(a)
        return plain
    if isinstance(node, ast.Name):
        return loaders[node.id][0]
    if isinstance(node, ast.BinOp):
        sym, op = _BINOPS[type(node.op)]
        left, right = _abuild(node.left, loaders, text), _abuild(node.right, loaders, text)

        async def bin_(a: Any) -> Any:
            lv = await left(a)
            return _fit(binop(sym, op, lv, await right(a)), text)
        return bin_
    if isinstance(node, ast.UnaryOp):
        inner = _abuild(node.operand, loaders, text)
        if isinstance(node.op, ast.Not):
            async def not_(a: Any) -> Any:
                return not await inner(a)
            return not_
        one = negate if isinstance(node.op, ast.USub) else plus

        async def un(a: Any) -> Any:
            return one(await inner(a))
        return un
    if isinstance(node, ast.BoolOp):
        parts = [_abuild(v, loaders, text) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        async def bool_(a: Any) -> Any:
            value: Any = is_and
            for p in parts:
                value = await p(a)
                if (not value) if is_and else value:
                    return value
            return value
        return bool_
    if isinstance(node, ast.Compare):
        first = _abuild(node.left, loaders, text)
        rest = [(_CMPOPS[type(op)], _abuild(c, loaders, text))
                for op, c in zip(node.ops, node.comparators, strict=True)]

        async def cmp(a: Any) -> bool:
            left = await first(a)
            for (sym, fn), part in rest:
                right = await part(a)
                if not compare(sym, fn, left, right):
                    return False
                left = right
            return True
        return cmp
    if isinstance(node, ast.Call):
        arg = _abuild(node.args[0], loaders, text)

        async def len_(a: Any) -> int:
            return length(await arg(a))
        return len_
    raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover


def shared_reads(expr: Expr, shared: Any) -> list[str]:
    """The shared variables ``expr`` reads (each name once), of the names in ``shared``."""
    return [n for n in expr.names if n in shared]


__all__ = ["CONSTANTS", "EvalError", "Expr", "ExprError", "Loader", "evaluator", "parse_expr",
           "shared_reads"]
