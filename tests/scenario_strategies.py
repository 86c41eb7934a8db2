"""Hypothesis strategies for valid scenarios drawn from the whole grammar (docs/formats.md §1).

Every actor kind (thread, process, coroutine), every primitive type (lock, rlock, semaphore,
bounded_semaphore, event, condition, barrier, queue, pipe, pool), every verb and every actor
option (daemon, autostart, pool, count) can appear. The strategies follow the checker's rules,
so that what they draw validates:

- coroutines never share a primitive with a thread or process actor: each primitive belongs to
  one *side* (``tp``: threads and processes, ``co``: coroutines), and an actor only names
  primitives of its side; asyncio has no rlock and no pipe, and its Barrier needs 3.11;
- a condition's ``lock`` is a lock or rlock of the same side;
- a pipe is between two single actors of the ``tp`` side, and each end only uses the
  directions the pipe allows; a pool's tasks have its kind and are not daemons;
- ``start`` names only ``autostart: false`` actors, nobody starts or joins itself, and process
  actors neither start nor join;
- ``add`` only on numbers, ``append`` only on lists, no ``timeout`` with ``blocking: false``;
  an ``add`` may be ``atomic: true``, and the scenario may list some variables in ``atomic``.
- the language (an actor in three draws it): the actor declares its locals ``i``, ``k`` and
  ``r`` (so no local is read unset), and its steps may be ``let``, ``if: EXPR``, ``while``
  (``max`` at most 3: a loop still true then ends the actor with an error, which is fine),
  ``assert``, ``write: {var, expr}`` and ``as: r`` on a step with a result; expressions mix
  the locals, the numeric shared variables and small numbers (a division by zero or a failed
  assert is an actor error, which a trace holds like any other).

Runs stay short: sleeps are 0 or 1 ms, timeouts are 50 ms, ``repeat`` at most 3, the
scenario's own timeout 2 s (so a deadlock the watchdog somehow missed still ends fast), and
process actors (slow to start) are rare and few.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

TIMEOUT = 0.05  # seconds, for blocking steps that take one
SCENARIO_TIMEOUT = 2.0

LOCKABLE = ("lock", "rlock", "semaphore", "bounded_semaphore", "condition")
TP_TYPES = ("lock", "rlock", "semaphore", "bounded_semaphore", "event", "condition", "barrier",
            "queue")
CO_TYPES = tuple(t for t in TP_TYPES if t != "rlock"
                 and (t != "barrier" or sys.version_info >= (3, 11)))
PREFIX = {"lock": "L", "rlock": "R", "semaphore": "S", "bounded_semaphore": "B", "event": "E",
          "condition": "C", "barrier": "X", "queue": "Q", "pipe": "P", "pool": "W"}

# values a variable, an item or a log can hold: YAML data, Unicode and null
SCALARS = st.one_of(st.integers(-5, 5), st.sampled_from(["", "馒头", "hello", "a b"]),
                    st.none(), st.booleans(),
                    st.floats(-2, 2, allow_nan=False).map(lambda f: round(f, 2)))
VALUES = st.one_of(SCALARS, st.lists(st.integers(0, 3), max_size=3))
TEXT = st.sampled_from(["", "hello", "账户余额不足", "a\nb", "北京"])


@dataclass
class Side:
    """The primitives of one side (``tp`` or ``co``), by type."""

    prims: dict[str, list[str]] = field(default_factory=dict)  # type -> names
    processes: bool = False  # process actors may use its primitives (multiprocessing's)

    def of(self, *types: str) -> list[str]:
        return [n for t in types for n in self.prims.get(t, [])]


@dataclass
class ActorCtx:
    """What one actor's steps may name."""

    name: str
    kind: str
    side: Side
    numbers: list[str]
    lists: list[str]
    scalars: list[str]
    pipes: list[tuple[str, bool, bool]]  # (pipe, may send, may recv)
    startable: list[str]
    joinable: list[str]
    lang: bool = False  # the actor may use the language (it declares locals i, k, r)


def _maybe_timeout(draw: st.DrawFn, step: dict[str, Any], blocking_ok: bool = False) -> None:
    """Give a blocking step a timeout, or (for acquire/put/get) ``blocking: false``, or
    neither."""
    choice = draw(st.sampled_from(["timeout", "none", "nonblocking"] if blocking_ok
                                  else ["timeout", "none"]))
    if choice == "timeout":
        step["timeout"] = TIMEOUT
    elif choice == "nonblocking":
        step["blocking"] = False


LOCALS = {"i": 0, "k": 1, "r": None}


def _term(draw: st.DrawFn, a: ActorCtx) -> str:
    return draw(st.sampled_from(["i", "k", *a.numbers, "0", "1", "2", "3", "-1", "0.5"]))


def _numeric(draw: st.DrawFn, a: ActorCtx) -> str:
    """A numeric expression: a term, or two with an operator (a division by zero is possible:
    it ends the actor with an error)."""
    left = _term(draw, a)
    if draw(st.booleans()):
        return left
    op = draw(st.sampled_from(["+", "-", "*", "//", "%", "/"]))
    text = f"{left} {op} {_term(draw, a)}"
    return f"({text})" if draw(st.booleans()) else text


def _boolean(draw: st.DrawFn, a: ActorCtx) -> str:
    """A test: a comparison (a chain sometimes), a result stored by ``as``, and/or/not."""
    kind = draw(st.sampled_from(["cmp", "cmp", "chain", "as", "and", "or", "not", "const"]))
    cmp = lambda: draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))  # noqa: E731
    if kind == "cmp":
        return f"{_numeric(draw, a)} {cmp()} {_numeric(draw, a)}"
    if kind == "chain":
        return f"{_term(draw, a)} {cmp()} {_term(draw, a)} {cmp()} {_term(draw, a)}"
    if kind == "as":
        return draw(st.sampled_from(["r == 'ok'", "r != 'timeout'", "r == null", "r == 1"]))
    if kind in ("and", "or"):
        return f"{_term(draw, a)} {cmp()} 1 {kind} {_term(draw, a)} {cmp()} 2"
    if kind == "not":
        return f"not ({_term(draw, a)} {cmp()} {_term(draw, a)})"
    return draw(st.sampled_from(["true", "false"]))


def _lang_step(draw: st.DrawFn, a: ActorCtx, depth: int, what: str) -> dict[str, Any]:
    body = lambda lo=0, hi=3: draw(_steps(a, depth + 1, lo, hi))  # noqa: E731
    if what == "let":
        names = draw(st.lists(st.sampled_from(["i", "k"]), min_size=1, max_size=2, unique=True))
        return {"let": {n: _numeric(draw, a) for n in names}}
    if what == "if_expr":
        step: dict[str, Any] = {"if": _boolean(draw, a),
                                "then": body(1) if depth < 2 else [{"log": "then"}]}
        if draw(st.booleans()):
            step["else"] = body() if depth < 2 else []
        return step
    if what == "while":
        # a counted loop, or any test (bounded by max either way)
        test = draw(st.sampled_from(["i < 2", "k < 3", "i != 1"])) if draw(st.booleans()) \
            else _boolean(draw, a)
        steps = [{"let": {"i": "i + 1", "k": "k + 1"}}] if draw(st.booleans()) else []
        return {"while": test, "max": draw(st.integers(1, 3)),
                "steps": steps + (body(0, 2) if depth < 2 else [{"log": "round"}]) or
                [{"log": "round"}]}
    if what == "assert":
        step = {"assert": draw(st.sampled_from(["i - i == 0", "k == k", "true"]))
                if draw(st.booleans()) else _boolean(draw, a)}
        if draw(st.booleans()):
            step["message"] = draw(TEXT)
        return step
    assert what == "write_expr"
    return {"write": {"var": draw(st.sampled_from(a.numbers)), "expr": _numeric(draw, a)}}


def _step(draw: st.DrawFn, a: ActorCtx, depth: int) -> dict[str, Any]:
    step = _core_step(draw, a, depth)
    if a.lang and any(v in step for v in ("acquire", "wait", "put", "get", "recv", "join")) \
            and "steps" not in step and draw(st.integers(0, 2)) == 2:
        step["as"] = "r"
    return step


def _core_step(draw: st.DrawFn, a: ActorCtx, depth: int) -> dict[str, Any]:
    side = a.side
    lockables = side.of(*LOCKABLE)
    events = side.of("event")
    conditions = side.of("condition")
    barriers = side.of("barrier")
    queues = side.of("queue")
    all_vars = a.numbers + a.lists + a.scalars
    options = ["sleep", "log"]
    if lockables:
        options += ["acquire", "release", "with", "with"]
    if events:
        options += ["wait_event", "set", "clear"]
    if conditions:
        options += ["condition_idiom", "wait_condition", "notify"]
    if barriers:
        options += ["barrier"]
    if queues:
        options += ["put", "get"]
    if a.pipes:
        options += ["send", "recv"]
    if all_vars:
        options += ["read", "write", "if"]
    if a.numbers:
        options += ["add", "add"]
    if a.lists:
        options += ["append"]
    if a.startable:
        options += ["start"]
    if a.joinable:
        options += ["join"]
    if depth < 2:
        options += ["repeat"]
    options += ["return", "fail"]
    if a.lang:
        options += ["let", "let", "if_expr", "assert"] + (["while"] if depth < 2 else []) \
            + (["write_expr"] if a.numbers else [])
    what = draw(st.sampled_from(options))
    if what in ("let", "if_expr", "while", "assert", "write_expr"):
        return _lang_step(draw, a, depth, what)
    body = lambda lo=0, hi=3: draw(_steps(a, depth + 1, lo, hi))  # noqa: E731

    if what == "sleep":
        return {"sleep": draw(st.sampled_from([0, 0.001]))}
    if what == "log":
        return {"log": draw(TEXT)}
    if what == "acquire":
        step: dict[str, Any] = {"acquire": draw(st.sampled_from(lockables))}
        _maybe_timeout(draw, step, blocking_ok=True)
        return step
    if what == "release":
        return {"release": draw(st.sampled_from(lockables))}
    if what == "with":
        return {"with": draw(st.sampled_from(lockables)), "steps": body() if depth < 2 else []}
    if what == "wait_event":
        step = {"wait": draw(st.sampled_from(events))}
        _maybe_timeout(draw, step)
        return step
    if what in ("set", "clear"):
        return {what: draw(st.sampled_from(events))}
    if what == "condition_idiom":
        # the usual shape: take the condition's lock, wait or notify, let it go
        c = draw(st.sampled_from(conditions))
        inner = draw(st.sampled_from([
            {"wait": c, "timeout": TIMEOUT}, {"wait": c}, {"notify": c}, {"notify_all": c},
            {"notify": c, "n": 2}]))
        return {"with": c, "steps": [inner]}
    if what == "wait_condition":
        step = {"wait": draw(st.sampled_from(conditions))}
        _maybe_timeout(draw, step)
        return step
    if what == "notify":
        c = draw(st.sampled_from(conditions))
        return draw(st.sampled_from([{"notify": c}, {"notify_all": c}, {"notify": c, "n": 2}]))
    if what == "barrier":
        step = {"wait": draw(st.sampled_from(barriers))}
        _maybe_timeout(draw, step)
        return step
    if what == "put":
        step = {"put": draw(st.sampled_from(queues))}
        if draw(st.booleans()):
            step["item"] = draw(VALUES)
        _maybe_timeout(draw, step, blocking_ok=True)
        return step
    if what == "get":
        step = {"get": draw(st.sampled_from(queues))}
        _maybe_timeout(draw, step, blocking_ok=True)
        return step
    if what == "send":
        senders = [p for p, s, _ in a.pipes if s]
        if not senders:
            return {"log": "no end to send on"}
        step = {"send": draw(st.sampled_from(senders))}
        if draw(st.booleans()):
            step["item"] = draw(VALUES)
        return step
    if what == "recv":
        receivers = [p for p, _, r in a.pipes if r]
        if not receivers:
            return {"log": "no end to receive on"}
        step = {"recv": draw(st.sampled_from(receivers))}
        _maybe_timeout(draw, step)
        return step
    if what == "read":
        return {"read": draw(st.sampled_from(all_vars))}
    if what == "write":
        var = draw(st.sampled_from(all_vars))
        value = (draw(st.integers(-5, 5)) if var in a.numbers else
                 draw(st.lists(st.integers(0, 3), max_size=3)) if var in a.lists else
                 draw(VALUES))
        return {"write": {"var": var, "value": value}}
    if what == "add":
        add: dict[str, Any] = {"var": draw(st.sampled_from(a.numbers)),
                               "value": draw(st.integers(-3, 3))}
        if draw(st.integers(0, 2)) == 2:  # one indivisible read-modify-write
            add["atomic"] = True
        return {"add": add}
    if what == "append":
        return {"append": {"var": draw(st.sampled_from(a.lists)), "item": draw(SCALARS)}}
    if what == "if":
        var = draw(st.sampled_from(all_vars))
        if var in a.numbers:
            test = {"var": var, "op": draw(st.sampled_from(["<", "<=", "==", "!=", ">=", ">"])),
                    "value": draw(st.integers(-3, 3))}
        else:
            test = {"var": var, "op": draw(st.sampled_from(["==", "!="])),
                    "value": draw(VALUES)}
        step = {"if": test, "then": body(1) if depth < 2 else [{"log": "then"}]}
        if draw(st.booleans()):
            step["else"] = body() if depth < 2 else []
        return step
    if what == "start":
        return {"start": draw(st.sampled_from(a.startable))}
    if what == "join":
        step = {"join": draw(st.sampled_from(a.joinable))}
        _maybe_timeout(draw, step)
        return step
    if what == "repeat":
        return {"repeat": draw(st.integers(0, 3)), "steps": body(1)}
    if what == "return":
        return {"return": draw(st.sampled_from([True, False, 1, "done"]))}
    assert what == "fail"
    return {"fail": draw(TEXT)}


@st.composite
def _steps(draw: st.DrawFn, a: ActorCtx, depth: int, lo: int, hi: int) -> list[dict[str, Any]]:
    n = draw(st.integers(lo, hi))
    return [_step(draw, a, depth) for _ in range(n)]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A valid scenario, as the mapping a YAML file holds."""
    # --- actors: mostly threads, some coroutines; processes in one scenario in eight
    with_processes = draw(st.sampled_from([False] * 7 + [True]))
    kinds_st = st.sampled_from(["thread", "thread", "coroutine"] +
                               (["process"] if with_processes else []))
    kinds = draw(st.lists(kinds_st, min_size=1, max_size=4))
    if with_processes and "process" not in kinds:
        kinds.append("process")
    if kinds.count("process") > 2:  # few processes: each one costs a start
        kinds = [k for k in kinds if k != "process"] + ["process", "process"]
    unicode = draw(st.integers(0, 5)) == 5
    names = [("甲乙丙丁戊己"[i] if unicode else f"a{i}") for i in range(len(kinds))]
    actors: list[dict[str, Any]] = [{"name": n, "kind": k}
                                    for n, k in zip(names, kinds, strict=True)]
    for actor in actors:
        if actor["kind"] != "process" and draw(st.integers(0, 5)) == 5:
            actor["count"] = 2
        if draw(st.integers(0, 7)) == 7:
            actor["daemon"] = True
    singles = {a["name"]: a["name"] if a.get("count", 1) == 1 else f"{a['name']}[0]"
               for a in actors}

    # --- primitives, each of one side
    primitives: dict[str, Any] = {}
    sides = {"tp": Side(processes=with_processes), "co": Side()}
    present = {("co" if a["kind"] == "coroutine" else "tp") for a in actors}
    counter = dict.fromkeys(PREFIX, 0)

    def new_name(t: str) -> str:
        counter[t] += 1
        base = f"{PREFIX[t]}{counter[t] - 1}"
        return "馒头框" if unicode and t == "queue" and counter[t] == 1 else base

    for side_name in sorted(present):
        side = sides[side_name]
        types = draw(st.lists(st.sampled_from(TP_TYPES if side_name == "tp" else CO_TYPES),
                              max_size=4))
        # locks first: a condition may be built on one of them
        for t in sorted(types, key=lambda t: t not in ("lock", "rlock")):
            name = new_name(t)
            spec: dict[str, Any] = {"type": t}
            if t in ("semaphore", "bounded_semaphore") and draw(st.booleans()):
                spec["value"] = draw(st.integers(0, 3))
            if t == "condition":
                locks = side.of("lock", "rlock")
                if locks and draw(st.booleans()):
                    spec["lock"] = draw(st.sampled_from(locks))
            if t == "barrier":
                spec["parties"] = draw(st.integers(1, 3))
            if t == "queue" and draw(st.booleans()):
                spec["maxsize"] = draw(st.integers(0, 2))
            primitives[name] = spec if len(spec) > 1 or draw(st.booleans()) else t
            side.prims.setdefault(t, []).append(name)

    # --- a pipe between two actors of the tp side
    tp_actors = [a["name"] for a in actors if a["kind"] != "coroutine"]
    pipe_ends: dict[str, list[tuple[str, bool, bool]]] = {}
    if len(tp_actors) >= 2 and draw(st.booleans()):
        x, y = draw(st.permutations(tp_actors))[:2]
        duplex = draw(st.booleans())
        pname = new_name("pipe")
        spec = {"type": "pipe", "between": [singles[x], singles[y]]}
        if not duplex:
            spec["duplex"] = False
        elif draw(st.booleans()):
            spec["duplex"] = True
        primitives[pname] = spec
        pipe_ends[singles[x]] = [(pname, True, duplex)]
        pipe_ends[singles[y]] = [(pname, duplex, True)]

    # --- a pool: some actors of its kind become its tasks
    pool_kinds = sorted({a["kind"] for a in actors if a["kind"] != "coroutine"})
    if pool_kinds and draw(st.integers(0, 3)) == 3:
        of = draw(st.sampled_from(pool_kinds))
        pname = new_name("pool")
        spec = {"type": "pool", "workers": draw(st.integers(1, 2))}
        if of == "process" or draw(st.booleans()):
            spec["of"] = of
        primitives[pname] = spec
        for actor in actors:
            if actor["kind"] == of and actor["name"] not in pipe_ends and draw(st.booleans()):
                actor["pool"] = pname
                actor.pop("daemon", None)

    # --- shared variables
    shared: dict[str, Any] = {}
    numbers: list[str] = []
    lists: list[str] = []
    scalars: list[str] = []
    if draw(st.booleans()):
        shared["n"] = draw(st.integers(-3, 100))
        numbers.append("n")
    if draw(st.booleans()):
        shared["账户" if unicode else "m"] = draw(st.floats(-5, 5).map(lambda f: round(f, 1)))
        numbers.append("账户" if unicode else "m")
    if draw(st.booleans()):
        shared["xs"] = draw(st.lists(st.integers(0, 3), max_size=2))
        lists.append("xs")
    if draw(st.booleans()):
        shared["s"] = draw(SCALARS)
        scalars.append("s")

    # --- autostart: false, for actors some thread or coroutine actor starts
    starters = [a for a in actors if a["kind"] != "process"]
    for actor in actors:
        if any(s is not actor for s in starters) and draw(st.integers(0, 4)) == 4:
            actor["autostart"] = False
    later = [a["name"] for a in actors if a.get("autostart") is False]

    # --- steps
    for actor in actors:
        side = sides["co" if actor["kind"] == "coroutine" else "tp"]
        can_spawn = actor["kind"] != "process"
        others = [a["name"] for a in actors if a is not actor]
        ctx = ActorCtx(actor["name"], actor["kind"], side, numbers, lists, scalars,
                       # every copy of a counted actor runs the same steps, and only one
                       # copy can be a pipe's end
                       pipe_ends.get(actor["name"], []) if actor.get("count", 1) == 1 else [],
                       [n for n in later if n in others] if can_spawn else [],
                       others if can_spawn else [],
                       lang=draw(st.integers(0, 2)) == 2)
        if ctx.lang:
            actor["locals"] = dict(LOCALS)
        actor["steps"] = draw(_steps(ctx, 0, 1, 5))
    doc: dict[str, Any] = {"name": "fuzz", "timeout": SCENARIO_TIMEOUT}
    if draw(st.booleans()):
        doc["description"] = draw(TEXT)
    if primitives:
        doc["primitives"] = primitives
    if shared:
        doc["shared"] = shared
        if draw(st.integers(0, 3)) == 3:  # some variables are atomic: every access is
            doc["atomic"] = draw(st.lists(st.sampled_from(sorted(shared)), min_size=1,
                                          unique=True))
    if numbers and draw(st.booleans()):
        doc["invariants"] = [{"var": numbers[0], "op": ">=", "value": 0}]
    if draw(st.booleans()):
        doc["expect"] = draw(st.lists(st.sampled_from(
            ["deadlock", "stall", "potential_deadlock", "race", "invariant", "misuse"]),
            max_size=2, unique=True))
    doc["actors"] = actors
    return doc

