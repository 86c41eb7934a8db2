"""The ``rwlock`` primitive type, end to end: under ``run``, ``replay`` and ``explore``, for
thread, process and coroutine actors; in the watchdog, the analyses and the renderers.

Readers share and a writer is exclusive (read from the trace: who holds RW at each event),
writer preference holds in every explored schedule, a recording replays to the same events,
a write under a read lock races with another reader, two rwlocks taken in opposite orders
deadlock (seen while it happens, and as a lock-order cycle), and the exports show the holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import by_seq, call, ev, events, make_trace, record_and_replay, rel, ret, run_yaml

from tracer import load_scenario_text, run_plan
from tracer.analyze import analyze, find_all, parse_trace_data, wait_for_graph
from tracer.engine.schedule.explore import make_scheduler, object_groups, schedule_seed
from tracer.render.chrome import to_chrome

KINDS = ["thread", "process", "coroutine"]


def holders_over_time(trace: dict[str, Any], target: str) -> list[dict[str, str]]:
    """Who holds ``target`` (actor -> mode) after each event, walking the trace by seq: an
    acquire's ok return takes a hold in the mode its call said (write when it said none), a
    release gives it back."""
    mode_of: dict[str, str] = {}
    held: dict[str, str] = {}
    out = []
    for e in by_seq(trace):
        if e.get("target") == target:
            who = e["actor"]
            if e["op"] == "acquire" and e.get("phase") == "call":
                mode_of[who] = e.get("mode", "write")
            elif e["op"] == "acquire" and e.get("phase") == "return" and e.get("result") == "ok":
                held[who] = mode_of[who]
            elif e["op"] == "release" and "error" not in e:
                held.pop(who, None)
        out.append(dict(held))
    return out


def exclusive_writers(trace: dict[str, Any], target: str) -> bool:
    """Never a writer beside anyone else."""
    return all(len(h) <= 1 or "write" not in h.values() for h in holders_over_time(trace, target))


READERS_SHARE = """
name: readers_share
timeout: 30
primitives:
  RW: rwlock
  E0: event
  E1: event
  E2: event
actors:
  # each reader holds its read until the next one holds one too, the first until the last:
  # if readers did not share, r1 would wait for r0's read, which waits for r2: a deadlock
  - name: r0
    kind: {kind}
    steps:
      - with: RW
        mode: read
        steps:
          - set: E0
          - wait: E2
  - name: r1
    kind: {kind}
    steps:
      - wait: E0
      - with: RW
        mode: read
        steps:
          - set: E1
          - wait: E2
  - name: r2
    kind: {kind}
    steps:
      - wait: E1
      - with: RW
        mode: read
        steps:
          - set: E2
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_readers_share(kind: str) -> None:
    result, trace = run_yaml(READERS_SHARE.format(kind=kind))
    assert result.status == "ok", result.detail
    most = max(len(h) for h in holders_over_time(trace, "RW"))
    assert most == 3
    calls = events(trace, op="acquire", target="RW", phase="call")
    assert {c.get("mode") for c in calls} == {"read"}  # the trace says the mode


WRITER_EXCLUDES = """
name: writer_excludes
timeout: 30
primitives:
  RW: rwlock
  E: event
  F: event
actors:
  - name: w
    kind: {kind}
    steps:
      - with: RW
        steps:
          - set: E
          - wait: F
  - name: r
    kind: {kind}
    steps:
      - wait: E
      - acquire: RW
        mode: read
        blocking: false
      - acquire: RW
        mode: write
        timeout: 0.05
      - set: F
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_a_writer_is_exclusive(kind: str) -> None:
    result, trace = run_yaml(WRITER_EXCLUDES.format(kind=kind))
    assert result.status == "ok", result.detail
    tries = events(trace, actor="r", op="acquire", target="RW", phase="return")
    assert [t["result"] for t in tries] == ["fail", "timeout"]
    assert exclusive_writers(trace, "RW")


PREFERENCE = """
name: writer_preference
timeout: 30
primitives:
  RW: rwlock
shared:
  x: 0
actors:
  - name: r1
    kind: {kind}
    steps:
      - with: RW
        mode: read
        steps:
          - read: x
  - name: w
    kind: {kind}
    steps:
      - with: RW
        steps:
          - write: {{var: x, value: 1}}
  - name: r2
    kind: {kind}
    steps:
      - with: RW
        mode: read
        steps:
          - read: x
"""


def no_read_while_a_writer_waits(trace: dict[str, Any]) -> bool:
    """No read is granted while another actor's write acquire is under way (called, not yet
    returned): writer preference. Under explore a write's call and its try are one step, so
    a write called and not returned is a write waiting."""
    waiting: set[str] = set()
    mode_of: dict[str, str] = {}
    for e in by_seq(trace):
        if e.get("target") != "RW" or e["op"] != "acquire":
            continue
        who = e["actor"]
        if e.get("phase") == "call":
            mode_of[who] = e.get("mode", "write")
            if mode_of[who] == "write":
                waiting.add(who)
        elif e.get("phase") == "return":
            if mode_of[who] == "read" and e.get("result") == "ok" and waiting - {who}:
                return False
            waiting.discard(who)
    return True


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "runs"), [("thread", 40), ("coroutine", 40), ("process", 8)])
def test_every_explored_schedule_keeps_writers_exclusive_and_preferred(kind: str,
                                                                       runs: int) -> None:
    plan = load_scenario_text(PREFERENCE.format(kind=kind), "<t>")
    order = [a.name for a in plan.actors]
    seen = set()
    for run in range(runs):
        sched = make_scheduler("random", schedule_seed(1, run), 3, order, 64,
                               object_groups(plan))
        result = run_plan(plan, sched, mode="explore")
        assert result.status == "ok", result.detail
        trace = json.loads(result.to_json())
        assert exclusive_writers(trace, "RW")
        assert no_read_while_a_writer_waits(trace)
        seen.add(tuple(e["actor"] for e in by_seq(trace)
                       if e["op"] == "acquire" and e.get("phase") == "return"))
    assert len(seen) > 1  # the schedules differ: who gets RW first


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", KINDS)
def test_a_recorded_run_replays_to_the_same_operations(kind: str, tmp_path: Path) -> None:
    recorded, diff, status = record_and_replay(PREFERENCE.format(kind=kind), tmp_path)
    assert diff is None, diff
    assert status == recorded["outcome"]["status"] == "ok"


DEADLOCK = """
name: rw_deadlock
timeout: 30
primitives:
  A: rwlock
  B: rwlock
  E1: event
  E2: event
actors:
  - name: t1
    kind: {kind}
    steps:
      - with: A
        steps:
          - set: E1
          - wait: E2
          - acquire: B
  - name: t2
    kind: {kind}
    steps:
      - with: B
        steps:
          - set: E2
          - wait: E1
          - acquire: A
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_two_rwlocks_in_opposite_orders_deadlock(kind: str, tmp_path: Path) -> None:
    result, trace = run_yaml(DEADLOCK.format(kind=kind))
    assert result.status == "deadlock", result.detail
    assert "rwlock B" in result.detail and "rwlock A" in result.detail
    _, diff, status = record_and_replay(DEADLOCK.format(kind=kind), tmp_path)
    assert diff is None, diff
    assert status == "deadlock"
    data = parse_trace_data(json.dumps(trace))
    assert "deadlock" in analyze(data).kinds
    graph = wait_for_graph(data)  # what the wait-for graph draws
    assert {("t1", "acquire", "B"), ("t2", "acquire", "A")} <= set(graph.waits)
    assert {("A", "t1", 1), ("B", "t2", 1)} <= set(graph.holds)
    assert {"t1", "t2", "A", "B"} <= graph.cycle


def rw_acq(actor: str, target: str, mode: str) -> list[dict[str, Any]]:
    return [call(actor, "acquire", target, mode=mode), ret(actor, "acquire", target)]


def opposite_orders(outer: str, inner: str) -> list[Any]:
    """t1 takes A then B, t2 (far later, nothing orders them) B then A; the outer locks in
    mode ``outer``, the inner ones in ``inner``."""
    return [ev("t1", "start"), rw_acq("t1", "A", outer), rw_acq("t1", "B", inner),
            rel("t1", "B"), rel("t1", "A"), ev("t1", "end", result="ok"),
            ev("t2", "start"), rw_acq("t2", "B", outer), rw_acq("t2", "A", inner),
            rel("t2", "A"), rel("t2", "B"), ev("t2", "end", result="ok")]


@pytest.mark.parametrize(("outer", "inner", "cycle"), [
    ("write", "write", True), ("read", "write", True), ("write", "read", True),
    ("read", "read", False),  # readers share: two readers never wait for each other
])
def test_a_lock_order_cycle_of_rwlocks_is_a_potential_deadlock_unless_both_read(
        outer: str, inner: str, cycle: bool) -> None:
    data = make_trace(opposite_orders(outer, inner), {"A": "rwlock", "B": "rwlock"})
    found = [f for f in find_all(data) if f.kind == "potential_deadlock"]
    assert bool(found) == cycle, found
    if cycle:
        assert set(found[0].objects) >= {"A", "B"}


WRITE_UNDER_READ = """
name: write_under_read
timeout: 30
primitives:
  RW: rwlock
  EA: event
  EB: event
shared:
  x: 0
actors:
  # both hold RW for reading, and each has seen the other in (the events): the write and the
  # read that follow are ordered by nothing
  - name: a
    kind: thread
    steps:
      - with: RW
        mode: read
        steps:
          - set: EA
          - wait: EB
          - write: {var: x, value: 1}
  - name: b
    kind: thread
    steps:
      - with: RW
        mode: read
        steps:
          - set: EB
          - wait: EA
          - read: x
"""

# the same with the write under the write lock, taken once both have met
WRITE_UNDER_WRITE = WRITE_UNDER_READ.replace(
    "          - write: {var: x, value: 1}\n",
    "").replace(
    "  - name: b\n", "      - with: RW\n        steps:\n          - write: {var: x, value: 1}\n"
    "  - name: b\n", 1)


@pytest.mark.timeout(60)
def test_a_write_under_a_read_lock_races_with_another_reader() -> None:
    result, trace = run_yaml(WRITE_UNDER_READ)
    assert result.status == "ok", result.detail
    races = [f for f in find_all(parse_trace_data(json.dumps(trace))) if f.kind == "race"]
    assert [sorted(f.actors) for f in races] == [["a", "b"]]
    assert races[0].objects[0] == "x"


@pytest.mark.timeout(60)
def test_a_write_under_the_write_lock_does_not_race() -> None:
    assert "      - with: RW\n        steps:\n          - write" in WRITE_UNDER_WRITE
    result, trace = run_yaml(WRITE_UNDER_WRITE)
    assert result.status == "ok", result.detail
    races = [f for f in find_all(parse_trace_data(json.dumps(trace))) if f.kind == "race"]
    assert races == []


@pytest.mark.timeout(60)
def test_the_chrome_export_shows_readers_holding_together() -> None:
    _, trace = run_yaml(READERS_SHARE.format(kind="thread"))
    doc = to_chrome(parse_trace_data(json.dumps(trace)))
    holds = [e for e in doc["traceEvents"]
             if e.get("cat") == "holding" and e.get("name", "").endswith("holds RW")]
    begins = sorted((e["ts"], e["tid"]) for e in holds if e["ph"] == "b")
    ends = sorted(e["ts"] for e in holds if e["ph"] == "e")
    assert len({tid for _, tid in begins}) == 3
    assert max(ts for ts, _ in begins) <= min(ends)  # all three hold it at once


BAD = """
name: rw_misuse
timeout: 10
primitives:
  RW: rwlock
actors:
  - name: t
    kind: {kind}
    steps:
      - release: RW
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_releasing_what_one_does_not_hold_is_an_error_that_says_so(kind: str) -> None:
    result, trace = run_yaml(BAD.format(kind=kind))
    assert result.status == "error"
    assert "t released rwlock RW, which it does not hold" in result.detail
    found = find_all(parse_trace_data(json.dumps(trace)))
    assert [f.kind for f in found] == ["misuse"]  # one problem, not also an error


UPGRADE = """
name: rw_upgrade
timeout: 10
primitives:
  RW: rwlock
actors:
  - name: a
    kind: {kind}
    steps:
      - with: RW
        mode: read
        steps:
          - acquire: RW
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_an_upgrade_is_refused_with_its_reason_and_reported_once(kind: str) -> None:
    # a real rwlock would wait for the actor's own read for ever: tracer says why instead
    result, trace = run_yaml(UPGRADE.format(kind=kind))
    assert result.status == "error"
    why = "a asks for a write of rwlock RW while it holds a read: a rwlock cannot be upgraded"
    assert why in result.detail
    found = find_all(parse_trace_data(json.dumps(trace)))
    assert [f.kind for f in found] == ["misuse"]
    assert why in found[0].message


@pytest.mark.timeout(60)
def test_the_timeline_says_each_acquire_s_mode(tmp_path: Path) -> None:
    from conftest import tracer_cli

    path = tmp_path / "rw.json"
    run_plan(load_scenario_text(WRITER_EXCLUDES.format(kind="thread"), "<t>")).write(path)
    shown = tracer_cli("show", str(path), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "  w         12  acquire RW (write) ..." in shown.stdout  # (12: the with's line)
    assert "acquire RW (read) ..." in shown.stdout


READ_THEN_WRITE = """
name: read_then_write
primitives:
  RW: rwlock
shared:
  x: 0
actors:
  - name: r
    kind: {kind}
    steps:
      - with: RW
        mode: read
        steps:
          - read: x
  - name: w
    kind: {kind}
    steps:
      - with: RW
        steps:
          - write: {{var: x, value: 1}}
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_read_recorded_as_granted_after_a_writers_call_replays(kind: str,
                                                                 tmp_path: Path) -> None:
    """A free run records a return just after its real acquire: a writer's call (and its
    announcement) can come between a read's grant and the read's return event. The replay
    grants the read where the recording did, writer preference notwithstanding (it once
    diverged: 'r's acquire RW cannot succeed now')."""
    path = tmp_path / "rec.json"
    run_plan(load_scenario_text(READ_THEN_WRITE.format(kind=kind), "<t>")).write(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    evs = by_seq(doc)
    r = [e for e in evs if e["actor"] == "r"]
    w = [e for e in evs if e["actor"] == "w"]
    granted = next(i for i, e in enumerate(r) if e["op"] == "acquire" and e["phase"] == "return")
    called = next(i for i, e in enumerate(w) if e["op"] == "acquire") + 1
    # r calls; w starts and calls its write; r's read is granted; r reads and releases; w
    # takes the lock
    order = r[:granted] + w[:called] + r[granted:] + w[called:]
    for e in r:
        if e["op"] == "read":
            e["value"] = 0  # before w's write (whichever went first in the run)
    stamps = sorted(e["ts"] for e in evs)
    for seq, (e, ts) in enumerate(zip(order, stamps, strict=True)):
        e["seq"], e["ts"] = seq, ts
    doc["events"] = order
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc), encoding="utf-8")
    r_ = subprocess.run([sys.executable, "-m", "tracer", "replay", str(edited), "-o",
                         str(tmp_path / "replayed.json")], capture_output=True, text=True,
                        timeout=60, check=False)
    assert r_.returncode == 0, r_.stdout + r_.stderr
    assert "identical" in r_.stdout
