"""Property-based tests: random valid scenarios from the whole grammar, run on the real engine.

Each scenario ``scenario_strategies.scenarios()`` draws (every actor kind, primitive type, verb
and actor option) is validated, run in-process, and its trace checked for what must hold
whatever the schedule was:

- the run ends with a known status and no exception; the trace parses and analyzes;
- ``seq`` is exactly 0..n-1 and ``ts`` never decreases;
- every ``return`` follows a ``call`` of the same actor, op and target, each call has at most
  one return, and an actor that ended (ok or error) left no call open;
- no primitive had more holders than it allows: a lock (and a condition's own asyncio lock) at
  most 1, a rlock (and a threading/multiprocessing condition's own lock) one actor at a time, a
  semaphore at most its value (sound because an acquire's return is logged after the real
  acquire and a release before the real release, so counting them under-estimates holders);
  a condition's ``wait`` gives its lock up at its call and takes it back before its return;
- every ``read`` equals the last ``write``/``append`` (or the initial value) before it in
  ``seq``; an ``add``'s write is its read plus one of its actor's deltas (an atomic add: one
  ``write`` whose ``old`` is the last value written and whose ``value`` is ``old`` plus a
  delta); ``final`` is the last value written (when no process was stopped mid-step);
- no race is between two atomic accesses;
- no tracer thread and no child process is left.

A sample is replayed (drawn, so that hypothesis shrinks towards it): the replay ends identical
or with a reported divergence, never with an exception; its trace satisfies the same
properties. A smaller sample goes through the CLI in a subprocess (exit 0 or 1, no traceback,
no internal error), run then replay. Mutations of valid scenarios that the format forbids are
refused with exit 2 and one clear message.

Profiles (hypothesis settings): ``ci`` (the default; derandomized, so CI is deterministic, and
no example database; about two minutes on 2 cores) and ``long`` for local use
(``TRACER_FUZZ=long``: random, many more examples). ``pytest -s`` prints the statistics.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from scenario_strategies import TIMEOUT, scenarios

from tracer import Plan, ScenarioError, load_scenario_text, run_plan
from tracer.analyze import analyze, parse_trace_data
from tracer.engine.schedule.replay import ReplayScheduler, first_difference, recorded_steps
from tracer.scenario import plan_from_mapping, walk_steps

PROFILE = os.environ.get("TRACER_FUZZ", "ci")
# examples of the main test; the CLI test runs 1 in 50 of that, the refusal test 1 in 5
EXAMPLES = int(os.environ.get("TRACER_FUZZ_EXAMPLES", "800" if PROFILE == "ci" else "20000"))
_COMMON: dict[str, Any] = {
    "deadline": None, "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
# ci: a fixed seed (a flaky CI test is a bug) and no example database in the work tree
settings.register_profile("ci", max_examples=EXAMPLES, derandomize=True, database=None,
                          **_COMMON)
# long: random, and the database (.hypothesis/, not in git) replays what failed first
settings.register_profile("long", max_examples=EXAMPLES, derandomize=False, **_COMMON)
settings.load_profile(PROFILE)
# the per-test budget (pytest-timeout): the CI profile takes well under it
BUDGET = 900 if PROFILE == "ci" else 24 * 3600

STATUSES = {"ok", "deadlock", "stall", "timeout", "error"}
STATS: Counter[str] = Counter()
DIVERGENCES: list[str] = []  # the first few replay divergences, for the summary


@pytest.fixture(scope="module", autouse=True)
def fuzz_statistics() -> Iterator[None]:
    """Print what the module ran and checked (shown with ``pytest -s``)."""
    start = time.monotonic()
    yield
    parts = ", ".join(f"{k} {v}" for k, v in sorted(STATS.items()))
    print(f"\nfuzz ({PROFILE}, {time.monotonic() - start:.0f} s): {parts}")
    for d in DIVERGENCES:
        print(f"  a replay diverged: {d}")


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


# --------------------------------------------------------------------------------------------
# the properties of one trace


def check(prop: str, ok: bool, message: str) -> None:
    STATS["properties checked"] += 1
    assert ok, f"{prop}: {message}"


# the ops a step of each verb records besides its own (an expression reads the shared
# variables it names: in a let, an assert, an if or while test, a write, add or append)
_OPS_OF_VERB: dict[str, set[str]] = {
    "with": {"acquire", "release"}, "start": {"spawn"}, "add": {"read", "write"},
    "write": {"read"}, "append": {"read"}, "if": {"read"}, "while": {"read"},
    "let": {"read"}, "assert": {"read"},
}


def _check_lines(doc: dict[str, Any], plan: Plan) -> None:
    """Every event of an actor carries the YAML line of a step of that actor whose verb
    records that op (``start``, and an ``end`` not at a failed step: the actor's
    declaration; a failed ``end``: a step of the actor); the engine's events carry none. A
    plan without lines (a replay's, from the embedded scenario) gives events without."""
    if not plan.lines:
        check("no lines", all("line" not in e for e in doc["events"]), "a line from nowhere")
        return
    verbs_at: dict[str, dict[int | None, set[str]]] = {}
    declared: dict[str, int | None] = {}
    for ap in plan.actors:
        index = next(i for i, a in enumerate(plan.scenario.actors) if a.name == ap.base)
        declared[ap.name] = plan.lines.get(("actors", index))
        at = verbs_at[ap.name] = {}
        for step, loc in walk_steps(ap.steps, ("actors", index, "steps")):
            at.setdefault(plan.lines.get(loc), set()).add(step.verb)
    for e in doc["events"]:
        actor, op, line = e["actor"], e["op"], e.get("line")
        if actor is None or op == "callback":  # the engine's
            check("engine events have no line", line is None, str(e))
            continue
        check("every actor event has a line", isinstance(line, int) and line >= 1, str(e))
        if op == "start" or (op == "end" and "step" not in e):
            check("start/end at the declaration", line == declared.get(actor),
                  f"{e}: {actor} is declared at line {declared.get(actor)}")
        elif op == "end":
            check("a failed end at a step", line in verbs_at.get(actor, {}), str(e))
        else:
            verbs = verbs_at.get(actor, {}).get(line, set())
            check("a line of a step of its verb",
                  any(op == v or op in _OPS_OF_VERB.get(v, ()) for v in verbs),
                  f"{e}: line {line} holds {actor}'s steps {sorted(verbs)}")


def check_trace(doc: dict[str, Any], plan: Plan) -> None:
    """Every property of a trace that holds whatever the schedule (see the module doc)."""
    evs = doc["events"]
    check("seq", [e["seq"] for e in evs] == list(range(len(evs))),
          f"seq is not 0..{len(evs) - 1}: {[e['seq'] for e in evs][:50]}")
    check("ts", all(a["ts"] <= b["ts"] for a, b in pairwise(evs)), "ts decreases")
    check("status", doc["outcome"]["status"] in STATUSES, f"status {doc['outcome']}")
    said = [doc["outcome"].get("detail") or ""] + [e.get("error", "") for e in evs]
    check("no internal error", not any("internal error" in t for t in said),
          next((t for t in said if "internal error" in t), ""))
    _check_calls(doc)
    _check_holders(evs, plan)
    _check_values(doc, plan)
    _check_lines(doc, plan)


def _check_calls(doc: dict[str, Any]) -> None:
    open_calls: dict[tuple[Any, ...], int] = {}
    for e in doc["events"]:
        key = (e["actor"], e["op"], e.get("target"))
        if e.get("phase") == "call":
            check("one call at a time", open_calls.get(key, 0) == 0,
                  f"a second call while one is open: {e}")
            open_calls[key] = 1
        elif e.get("phase") == "return":
            check("return after call", open_calls.get(key, 0) == 1,
                  f"return without an open call of the same actor, op and target: {e}")
            open_calls[key] = 0
            check("return result", "result" in e, f"return without a result: {e}")
    status = {a["name"]: a["status"] for a in doc["actors"]}
    for (actor, op, target), n in open_calls.items():
        if n:
            check("ended actors leave no call open", status.get(actor) not in ("ok", "error"),
                  f"{actor} ended {status.get(actor)} with its {op} {target} call open")


def _resource(plan: Plan, target: str) -> tuple[str, str]:
    """What an acquire/release of ``target`` holds, and how it counts: ``counter`` (at most
    ``capacity`` holds in all) or ``owner`` (one actor at a time, re-entrant)."""
    specs = plan.scenario.primitives
    spec = specs[target]
    if spec.type == "condition":
        lock = getattr(spec, "lock", None)
        if lock:
            return _resource(plan, lock)
        # threading's and multiprocessing's Condition() make a RLock; asyncio's a Lock
        return target, "counter" if plan.flavour.get(target) == "coroutine" else "owner"
    return target, "owner" if spec.type == "rlock" else "counter"


def _capacity(plan: Plan, res: str) -> int:
    spec = plan.scenario.primitives[res]
    return int(getattr(spec, "value", 1)) if spec.type in ("semaphore",
                                                            "bounded_semaphore") else 1


def _check_holders(evs: list[dict[str, Any]], plan: Plan) -> None:
    specs = plan.scenario.primitives
    total: Counter[str] = Counter()  # acquire returns minus releases, per resource
    held: dict[str, Counter[str]] = {}  # resource -> actor -> holds
    suspended: dict[tuple[str, str], int] = {}  # (resource, actor) -> holds a wait gave up
    for e in evs:
        target, actor, op, phase = e.get("target"), e["actor"], e["op"], e.get("phase")
        if target not in specs or op not in ("acquire", "release", "wait"):
            continue
        if specs[target].type not in ("lock", "rlock", "semaphore", "bounded_semaphore",
                                      "condition"):
            continue
        res, how = _resource(plan, target)
        mine = held.setdefault(res, Counter())
        if op == "acquire" and phase == "return" and e.get("result") == "ok":
            total[res] += 1
            mine[actor] += 1
            if how == "counter":
                check("holders", total[res] <= _capacity(plan, res),
                      f"{res} has {total[res]} holders after seq {e['seq']}; it allows "
                      f"{_capacity(plan, res)}")
            else:
                owners = sorted(a for a, n in mine.items() if n > 0)
                check("holders", len(owners) <= 1,
                      f"{res} is held by {owners} at once after seq {e['seq']}")
        elif op == "release" and "error" not in e:
            total[res] -= 1
            if mine[actor] > 0:
                mine[actor] -= 1
            elif how == "owner":
                # the seam refuses a release by a non-holder (its ident may be a dead holder's)
                check("holders", False,
                      f"{actor} released {res} (rlock-like) without holding it, and no error "
                      f"was recorded: seq {e['seq']}")
        elif op == "wait" and phase == "call":
            n = mine.pop(actor, 0)
            suspended[(res, actor)] = n
            total[res] -= n
        elif op == "wait" and phase == "return":
            n = suspended.pop((res, actor), 0)
            mine[actor] += n
            total[res] += n
            if n and e.get("result") in ("ok", "timeout"):
                owners = sorted(a for a, k in mine.items() if k > 0)
                if how == "counter":
                    check("holders", total[res] <= _capacity(plan, res),
                          f"{res} has {total[res]} holders after the wait at seq {e['seq']}")
                else:
                    check("holders", len(owners) <= 1,
                          f"{res} is held by {owners} at once after seq {e['seq']}")


def _add_deltas(plan: Plan) -> dict[tuple[str, str], set[Any]]:
    """(actor, var) -> the values its `add` steps add and its `write` steps write."""
    from tracer.scenario import walk_steps
    from tracer.scenario._model import Add, Write
    out: dict[tuple[str, str], set[Any]] = {}
    for a in plan.actors:
        for step, _ in walk_steps(a.steps, ()):
            if isinstance(step, Add):
                out.setdefault((a.name, step.add.var), set()).add(("add", step.add.value))
            if isinstance(step, Write) and step.write.expr is not None:
                # a write of an expression's value (it may read the variable first): any value
                out.setdefault((a.name, step.write.var), set()).add(("expr", None))
            elif isinstance(step, Write):
                value = step.write.value
                out.setdefault((a.name, step.write.var), set()).add(
                    ("write", json.dumps(value, sort_keys=True)))
    return out


def _check_values(doc: dict[str, Any], plan: Plan) -> None:
    model = dict(plan.scenario.shared)
    deltas = _add_deltas(plan)
    last: dict[str, dict[str, Any]] = {}  # actor -> its previous event
    for e in doc["events"]:
        actor, op, var = e["actor"], e["op"], e.get("target")
        if var in model and op == "read":
            check("reads", e.get("value") == model[var] and "value" in e,
                  f"seq {e['seq']}: {actor} read {var} = {e.get('value', '(no value)')!r}, "
                  f"but the last write before it left {model[var]!r}")
        elif var in model and op == "write" and "old" in e:
            # an atomic add: one event, the value it replaced and that plus a delta
            allowed = deltas.get((actor, var), set())
            STATS["atomic adds"] += 1
            check("atomic add", e.get("atomic") is True and e["old"] == model[var] and any(
                kind == "add" and e.get("value") == e["old"] + v for kind, v in allowed),
                f"seq {e['seq']}: {actor}'s atomic add of {var} wrote {e.get('value')!r} "
                f"over old {e['old']!r}, but the last write before it left {model[var]!r} "
                f"and its steps add {sorted(map(str, allowed))}")
            model[var] = e.get("value")
        elif var in model and op == "write":
            prev = last.get(actor)
            if (prev is not None and prev["op"] == "read" and prev.get("target") == var
                    and _number(prev.get("value")) and _number(e.get("value"))):
                allowed = deltas.get((actor, var), set())
                fits = any(kind == "expr" or (
                    kind == "add" and e["value"] == prev["value"] + v) or (
                    kind == "write" and json.dumps(e["value"], sort_keys=True) == v)
                    for kind, v in allowed)
                check("add", fits, f"seq {e['seq']}: {actor} wrote {var} = {e['value']!r} "
                                   f"after reading {prev['value']!r}; its steps add or write "
                                   f"{sorted(map(str, allowed))}")
            model[var] = e.get("value")
        elif var in model and op == "append":
            model[var] = [*model[var], e.get("item")] if isinstance(model[var], list) \
                else model[var]
        if actor is not None:
            last[actor] = e
    processes = any(a.kind == "process" for a in plan.actors)
    if doc["outcome"]["status"] == "ok" or not processes:
        check("final", doc["final"] == model,
              f"final {doc['final']!r}, but the last writes left {model!r}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def tracer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.is_alive() and t.name.startswith(("tracer-actor:", "tracer-pool:"))]


class _Errors(logging.Handler):
    """Collects the errors asyncio logs (a task destroyed while pending) during a run."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


@contextmanager
def nothing_unraised() -> Iterator[None]:
    """Fail when the run leaves an exception nobody could catch (a coroutine never awaited,
    an error in a finalizer) or makes asyncio log an error; checked after a collection."""
    seen: list[str] = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(
        f"{u.exc_type.__name__}: {u.exc_value} ({u.err_msg or 'in'} {u.object!r})")
    handler = _Errors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
        gc.collect()
    finally:
        sys.unraisablehook = old
        logger.removeHandler(handler)
    check("nothing unraised", not seen and not handler.seen,
          f"unraisable: {seen}; asyncio logged: {handler.seen}")


def check_nothing_left(before: set[threading.Thread]) -> None:
    """No tracer thread (but those already left by an earlier, failed, example: ``before``)
    and no child process outlives the run."""
    left = [t.name for t in tracer_threads() if t not in before]
    check("no thread left", not left, f"threads left: {left}")
    children = multiprocessing.active_children()
    check("no process left", not children, f"processes left: {children}")


# --------------------------------------------------------------------------------------------
# the tests


def replay(trace_text: str) -> tuple[str, str | None, dict[str, Any], Plan]:
    """Replay a recorded trace in-process: (status, divergence or None, trace, plan)."""
    data = parse_trace_data(trace_text, "<fuzz trace>")
    plan = plan_from_mapping(data.scenario, "<fuzz trace> (its scenario)")
    processes = any(a.kind == "process" for a in plan.actors)
    sched = ReplayScheduler(recorded_steps(data.events), patience=10.0 if processes else 2.0)
    result = run_plan(plan, sched, mode="replay")
    text = result.to_json()
    replayed = parse_trace_data(text, "<fuzz replay>")
    diff = sched.divergence.message() if sched.divergence else first_difference(
        data.events, replayed.events)
    return result.status, diff, json.loads(text), plan


@pytest.mark.timeout(BUDGET)
@given(doc=scenarios(), do_replay=st.sampled_from([False, False, False, True]))
def test_random_scenarios_run_to_consistent_traces(doc: dict[str, Any],
                                                   do_replay: bool) -> None:
    text = dump(doc)
    note(text)
    try:
        plan = load_scenario_text(text, "<fuzz>")
    except ScenarioError as exc:  # the strategies follow the checker's rules
        raise AssertionError(f"a valid scenario was refused:\n{exc}") from None
    STATS["scenarios run"] += 1
    if PROFILE != "ci" and STATS["scenarios run"] % 500 == 0:  # a long run shows its progress
        print(f"\nfuzz so far: {dict(sorted(STATS.items()))}", flush=True)
    kinds = {a.kind for a in plan.actors}
    for kind in kinds:
        STATS[f"scenarios with {kind} actors"] += 1
    before = set(tracer_threads())
    with nothing_unraised():
        result = run_plan(plan)
    trace = result.to_json()
    check_nothing_left(before)
    report = analyze(parse_trace_data(trace, "<fuzz trace>"))
    for f in report.findings:
        if f.kind == "race":  # two atomic accesses never race
            check("atomics", not (f.details["first"].get("atomic")
                                  and f.details["second"].get("atomic")), f.message)
    check_trace(json.loads(trace), plan)
    STATS[f"outcome {result.status}"] += 1
    if do_replay:
        STATS["replays"] += 1
        with nothing_unraised():
            status, diff, replayed, rplan = replay(trace)
        check_nothing_left(before)
        STATS["replays identical" if diff is None else "replays diverged"] += 1
        check("replay status", status in STATUSES | {"interrupted"}, status)
        if diff is None:
            check("replay status", status == result.status,
                  f"identical replay ended {status}, the recording {result.status}")
        note(f"replay: {diff}")
        if diff is not None and len(DIVERGENCES) < 5:
            DIVERGENCES.append(diff.splitlines()[0][:300])
        check_trace(replayed, rplan)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUTF8": "1"}
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _clean(proc: subprocess.CompletedProcess[str], allowed: set[int]) -> None:
    out = proc.stdout + proc.stderr
    check("cli exit", proc.returncode in allowed,
          f"exit {proc.returncode} (expected {sorted(allowed)}):\n{out}")
    check("cli no traceback", "Traceback" not in out and "internal error" not in out, out)


@pytest.mark.timeout(BUDGET)
@settings(max_examples=max(1, EXAMPLES // 50))
@given(doc=scenarios())
def test_random_scenarios_through_the_cli(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "s.yaml").write_text(dump(doc), encoding="utf-8")
        STATS["cli runs"] += 1
        run = _cli("run", "s.yaml", "-o", "t.json", cwd=d)
        _clean(run, {0, 1})
        check("cli trace written", (d / "t.json").exists(), run.stdout + run.stderr)
        again = _cli("replay", "t.json", "-o", "r.json", cwd=d)
        STATS["cli replays"] += 1
        _clean(again, {0, 1})
        said = again.stdout
        check("cli replay verdict", "identical" in said or "diverg" in said
              or "expected" in said, said)


# --- invalid scenarios: each mutation breaks one rule of docs/formats.md §1


def _first_step(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["actors"][0]["steps"][0]  # type: ignore[no-any-return]


MUTATIONS = {
    "unknown verb": lambda d: d["actors"][0]["steps"].insert(0, {"aquire": "L0"}),
    "missing target": lambda d: d["actors"][0]["steps"].insert(0, {"acquire": "nowhere"}),
    "verb on a wrong type": lambda d: (d.setdefault("primitives", {}).update(zz_event="event"),
                                       d["actors"][0]["steps"].insert(0, {"acquire": "zz_event"})),
    "negative timeout": lambda d: d["actors"][0]["steps"].insert(
        0, {"sleep": -1}),
    "timeout with blocking false": lambda d: (
        d.setdefault("primitives", {}).update(zz_lock="lock"),
        d["actors"][0]["steps"].insert(0, {"acquire": "zz_lock", "timeout": TIMEOUT,
                                           "blocking": False})),
    "coroutine shares a thread's lock": lambda d: (
        d.setdefault("primitives", {}).update(zz_lock="lock"),
        d["actors"].extend([
            {"name": "zz_t", "kind": "thread", "steps": [{"acquire": "zz_lock"}]},
            {"name": "zz_c", "kind": "coroutine", "steps": [{"acquire": "zz_lock"}]}])),
    "start of an actor that starts by itself": lambda d: (
        d["actors"][0].pop("autostart", None),
        d["actors"].append({"name": "zz_s", "kind": "thread",
                            "steps": [{"start": d["actors"][0]["name"]}]})),
    "an actor joins itself": lambda d: d["actors"][0]["steps"].insert(
        0, {"join": d["actors"][0]["name"]}),
    "duplicate actor": lambda d: d["actors"].append(dict(d["actors"][0])),
    "add on a list": lambda d: (d.setdefault("shared", {}).update(zz_list=[]),
                                d["actors"][0]["steps"].insert(
                                    0, {"add": {"var": "zz_list", "value": 1}})),
    "wrong type of count": lambda d: d["actors"][0].update(count="two"),
    "unknown key": lambda d: d["actors"][0].update(colour="red"),
    "negative step timeout": lambda d: (
        d.setdefault("primitives", {}).update(zz_event="event"),
        d["actors"][0]["steps"].insert(0, {"wait": "zz_event", "timeout": -0.5})),
    "variable used as a primitive": lambda d: (
        d.setdefault("shared", {}).update(zz_var=1),
        d["actors"][0]["steps"].insert(0, {"acquire": "zz_var"})),
    "primitive used as a variable": lambda d: (
        d.setdefault("primitives", {}).update(zz_lock="lock"),
        d["actors"][0]["steps"].insert(0, {"read": "zz_lock"})),
    "pipe used by a third actor": lambda d: (
        d.setdefault("primitives", {}).update(
            zz_pipe={"type": "pipe", "between": ["zz_p1", "zz_p2"]}),
        d["actors"].extend([{"name": n, "kind": "thread", "steps": [{"send": "zz_pipe"}]}
                            for n in ("zz_p1", "zz_p2", "zz_p3")])),
    "pipe against its direction": lambda d: (
        d.setdefault("primitives", {}).update(
            zz_pipe={"type": "pipe", "between": ["zz_p1", "zz_p2"], "duplex": False}),
        d["actors"].extend([{"name": "zz_p1", "kind": "thread", "steps": [{"recv": "zz_pipe"}]},
                            {"name": "zz_p2", "kind": "thread", "steps": []}])),
    "condition on an event": lambda d: d.setdefault("primitives", {}).update(
        zz_event="event", zz_cond={"type": "condition", "lock": "zz_event"}),
    "pool task of another kind": lambda d: (
        d.setdefault("primitives", {}).update(zz_pool={"type": "pool", "workers": 1}),
        d["actors"].append({"name": "zz_task", "kind": "process", "pool": "zz_pool"})),
    "daemon pool task": lambda d: (
        d.setdefault("primitives", {}).update(zz_pool={"type": "pool", "workers": 1}),
        d["actors"].append({"name": "zz_task", "kind": "thread", "pool": "zz_pool",
                            "daemon": True})),
    "append on a number": lambda d: (
        d.setdefault("shared", {}).update(zz_n=0),
        d["actors"][0]["steps"].insert(0, {"append": {"var": "zz_n", "item": 1}})),
    "rlock for coroutines": lambda d: (
        d.setdefault("primitives", {}).update(zz_rlock="rlock"),
        d["actors"].append({"name": "zz_c", "kind": "coroutine",
                            "steps": [{"acquire": "zz_rlock"}]})),
    "process joins": lambda d: d["actors"].append(
        {"name": "zz_proc", "kind": "process", "steps": [{"join": d["actors"][0]["name"]}]}),
    "pool as a step target": lambda d: (
        d.setdefault("primitives", {}).update(zz_pool={"type": "pool", "workers": 1}),
        d["actors"][0]["steps"].insert(0, {"acquire": "zz_pool"})),
}


@pytest.mark.timeout(BUDGET)
@settings(max_examples=max(1, EXAMPLES // 5))
@given(doc=scenarios(), mutation=st.sampled_from(sorted(MUTATIONS)),
       via_cli=st.integers(0, 3).map(lambda i: i == 3))
def test_mutated_scenarios_are_refused_with_one_clear_message(doc: dict[str, Any],
                                                              mutation: str,
                                                              via_cli: bool) -> None:
    MUTATIONS[mutation](doc)
    text = dump(doc)
    note(text)
    STATS["refusals checked"] += 1
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, "fuzz.yaml")
    message = str(info.value)
    check("refusal message", message.startswith("fuzz.yaml") and "Traceback" not in message
          and 0 < len(info.value.problems) <= 3,
          f"{mutation}: {len(info.value.problems)} problem(s):\n{message}")
    check("refusal location", all(p.path for p in info.value.problems), message)
    if via_cli:
        STATS["cli refusals"] += 1
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "fuzz.yaml").write_text(text, encoding="utf-8")
            proc = _cli("run", "fuzz.yaml", "-o", "t.json", cwd=d)
            _clean(proc, {2})
            check("cli refusal", proc.stderr.startswith("tracer: error: fuzz.yaml")
                  and not proc.stdout and not (d / "t.json").exists(),
                  f"stdout {proc.stdout!r}, stderr {proc.stderr!r}")


# --- the checks themselves can fail: each broken copy of a real trace is caught

BROKEN_BASE = """
name: checks
primitives: {L: lock, R: rlock, S: {type: semaphore, value: 2}}
shared: {n: 0}
actors:
  - name: t1
    kind: thread
    steps:
      - with: L
        steps: [{add: {var: n, value: 1}}]
      - with: R
        steps: [{with: R, steps: [{read: n}]}]
      - with: S
        steps: [{sleep: 0}]
"""


def _breakers() -> dict[str, Any]:
    def renumber(evs: list[dict[str, Any]]) -> None:
        for i, e in enumerate(evs):
            e["seq"] = i

    def dup(evs: list[dict[str, Any]], target: str) -> None:
        """A second actor takes ``target`` right after the first one did."""
        i = next(i for i, e in enumerate(evs) if e["op"] == "acquire"
                 and e.get("target") == target and e.get("phase") == "return")
        evs[i + 1:i + 1] = [{**evs[i - 1], "actor": "t2", "ts": evs[i]["ts"]},
                            {**evs[i], "actor": "t2"}]
        renumber(evs)

    def first(evs: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
        return next(e for e in evs if all(e.get(k) == v for k, v in match.items()))

    return {
        "seq": lambda evs: evs.reverse(),
        "return after call": lambda evs: (
            evs.remove(first(evs, op="acquire", target="L", phase="call")), renumber(evs)),
        "holders (lock)": lambda evs: dup(evs, "L"),
        "holders (rlock)": lambda evs: dup(evs, "R"),
        "reads": lambda evs: first(evs, op="read", target="n").update(value=5),
        "add": lambda evs: first(evs, op="write", target="n").update(value=7),
    }


@pytest.mark.parametrize("prop", sorted(_breakers()))
def test_each_trace_check_catches_a_broken_trace(prop: str) -> None:
    plan = load_scenario_text(BROKEN_BASE, "<checks>")
    doc = json.loads(run_plan(plan).to_json())
    check_trace(doc, plan)  # the real trace passes
    broken = json.loads(json.dumps(doc))
    _breakers()[prop](broken["events"])
    with pytest.raises(AssertionError, match=prop.split(" (", maxsplit=1)[0]):
        check_trace(broken, plan)
