"""Process actors: real child processes over multiprocessing primitives, read from the trace.

Every assertion is a property of the trace (pids, seq order, items, counts, results, `final`),
never a timing. Where an order between actors matters, scenarios enforce it with events or
joins, not sleeps. After every run, no child process of the run may be left: the module's
autouse fixture checks ``multiprocessing.active_children()``, and the tests that end a run
early (deadlock, stall, timeout, error, kill) also check every actor pid of the trace.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import sys
from _multiprocessing import SemLock
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    SCENARIOS,
    abba,
    by_seq,
    check_shape,
    end_of,
    events,
    max_holders,
    run_yaml,
    semaphore_of_two,
    statuses,
    tracer_cli,
)

from tracer import load_scenario_text, run_plan
from tracer._gc import collect_run, gc_paused
from tracer.engine import RunResult
from tracer.engine._proc import RunFault

# --------------------------------------------------------------------------------------------
# helpers


def run_with(text: str, start_method: str | None = None) -> tuple[RunResult, dict[str, Any]]:
    """Like conftest.run_yaml, with a start method for the children."""
    result = run_plan(load_scenario_text(text, "<test>"), start_method=start_method)
    return result, json.loads(result.to_json())



def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, or a pid that is gone, is not)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        state = text.rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    try:  # no /proc: signal 0 says whether it exists (a zombie counts as existing)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_no_process_left(trace: dict[str, Any]) -> None:
    """No child of the run is alive: none known to multiprocessing, no actor pid."""
    assert multiprocessing.active_children() == []
    pids = [a["pid"] for a in trace["actors"] if a["kind"] == "process" and a["pid"]]
    alive = [p for p in pids if pid_alive(p)]
    assert alive == [], f"process actors still alive after the run: {alive}"






@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    yield
    left = multiprocessing.active_children()
    assert not left, f"child processes outlived the run: {[p.name for p in left]}"


# --------------------------------------------------------------------------------------------
# processes are processes


TWO_CHILDREN = """
name: two_children
actors:
  - name: main
    kind: thread
    steps:
      - start: p1
      - start: p2
      - join: p1
      - join: p2
      - log: "主进程,end"
  - name: p1
    kind: process
    autostart: false
    steps:
      - log: "Process:p1,start"
      - sleep: 0.01
      - log: "Process:p1,end"
  - name: p2
    kind: process
    autostart: false
    steps:
      - log: "Process:p2,start"
      - sleep: 0.01
      - log: "Process:p2,end"
"""


def test_process_actors_have_their_own_pids() -> None:
    result, trace = run_yaml(TWO_CHILDREN)
    assert result.status == "ok", result.detail
    check_shape(trace)
    actors = {a["name"]: a for a in trace["actors"]}
    assert actors["main"]["kind"] == "thread"
    assert actors["main"]["pid"] == os.getpid()
    assert actors["p1"]["kind"] == actors["p2"]["kind"] == "process"
    p1, p2 = actors["p1"]["pid"], actors["p2"]["pid"]
    assert isinstance(p1, int) and isinstance(p2, int)
    assert p1 > 0 and p2 > 0
    assert len({p1, p2, os.getpid()}) == 3
    assert all(end_of(trace, n)["result"] == "ok" for n in ("main", "p1", "p2"))
    assert all(actors[n]["status"] == "ok" for n in ("main", "p1", "p2"))
    assert_no_process_left(trace)


def test_main_thread_joins_process_actors() -> None:
    result, trace = run_yaml(TWO_CHILDREN)
    assert result.status == "ok", result.detail
    spawns = {e["target"]: e["seq"] for e in events(trace, actor="main", op="spawn")}
    for p in ("p1", "p2"):
        began = events(trace, actor=p, op="start")
        assert len(began) == 1 and began[0]["seq"] > spawns[p]
        joined = events(trace, actor="main", op="join", target=p, phase="return")
        assert len(joined) == 1 and joined[0]["result"] == "ok"
        assert joined[0]["seq"] > end_of(trace, p)["seq"]
    last_log = events(trace, actor="main", op="log")[-1]
    assert last_log["detail"] == "主进程,end"
    assert last_log["seq"] > max(end_of(trace, p)["seq"] for p in ("p1", "p2"))
    logs = [(e["actor"], e["detail"]) for e in by_seq(trace) if e["op"] == "log"]
    for p in ("p1", "p2"):
        assert [d for a, d in logs if a == p] == [f"Process:{p},start", f"Process:{p},end"]


# --------------------------------------------------------------------------------------------
# queues and pipes between processes


PRODUCER_CONSUMER = """
name: pc_processes
primitives:
  q: {type: queue, maxsize: 3}
  eaten: event
actors:
  - name: producer
    kind: process
    steps:
      - repeat: 12
        steps:
          - put: q
      - wait: eaten
  - name: consumer
    kind: process
    steps:
      - repeat: 12
        steps:
          - get: q
      - set: eaten
"""


def test_queue_between_processes_is_fifo() -> None:
    # the producer stays until the consumer has eaten everything (LOST_ITEMS below covers a
    # producer that ends at once)
    result, trace = run_yaml(PRODUCER_CONSUMER)
    assert result.status == "ok", result.detail
    check_shape(trace)
    put = [e["item"] for e in events(trace, actor="producer", op="put", phase="call")]
    got = [e["item"] for e in events(trace, actor="consumer", op="get", phase="return")]
    assert put == [f"producer#{i}" for i in range(1, 13)]
    assert got == put
    assert all(e["result"] == "ok" for e in events(trace, op="put", phase="return"))
    # a get returns an item only after the put that brought it was called
    put_call = {e["item"]: e["seq"] for e in events(trace, op="put", phase="call")}
    for e in events(trace, op="get", phase="return"):
        assert e["seq"] > put_call[e["item"]]
    # with maxsize 3, a fourth item is in only after a get returned: puts returned minus gets
    # called never exceeds 3 + the gets that are in flight, i.e. returns of put <= 3 + gets
    puts_done = gets_called = 0
    for e in by_seq(trace):
        if e["op"] == "put" and e.get("phase") == "return":
            puts_done += 1
        elif e["op"] == "get" and e.get("phase") == "call":
            gets_called += 1
        assert puts_done <= 3 + gets_called
    assert_no_process_left(trace)


LOST_ITEMS = """
name: lost_items
timeout: 3
primitives:
  q: queue
actors:
  - name: main
    kind: thread
    steps:
      - start: producer
      - join: producer
      - start: consumer
      - join: consumer
  - name: producer
    kind: process
    autostart: false
    steps:
      - repeat: 4000
        steps:
          - put: q
  - name: consumer
    kind: process
    autostart: false
    steps:
      - repeat: 4000
        steps:
          - get: q
"""


# Regression (found with this file, fixed in b4650c5): the process flavour of a queue was a
# plain multiprocessing.Queue whose children called cancel_join_thread(), so items still in
# a child's feeder thread when it ended were dropped, though every put had returned ok (about
# 2000 of these 4000 arrived; the run timed out). Items must survive their producer.
def test_items_put_by_a_process_that_ended_are_not_lost() -> None:
    result, trace = run_yaml(LOST_ITEMS)
    assert result.status == "ok", result.detail
    got = events(trace, actor="consumer", op="get", phase="return", result="ok")
    assert len(got) == 4000
    assert_no_process_left(trace)


def test_pipe_greeting_between_two_processes() -> None:
    result, trace = run_yaml((SCENARIOS / "process_pipe.yaml").read_text(encoding="utf-8"))
    assert result.status == "ok", result.detail
    check_shape(trace)
    sent = {e["actor"]: e["item"] for e in events(trace, op="send", phase="call")}
    got = {e["actor"]: e["item"] for e in events(trace, op="recv", phase="return")}
    assert sent == {"process1": "Hello", "process2": "你好"}
    assert got == {"process1": "你好", "process2": "Hello"}
    send_call = {e["item"]: e["seq"] for e in events(trace, op="send", phase="call")}
    for e in events(trace, op="recv", phase="return"):
        assert e["result"] == "ok"
        assert e["seq"] > send_call[e["item"]]
    pids = {a["pid"] for a in trace["actors"]}
    assert len(pids) == 2 and os.getpid() not in pids
    assert_no_process_left(trace)


def test_manager_queue_scenario_gives_each_child_one_item() -> None:
    result, trace = run_yaml(
        (SCENARIOS / "process_queue_manager.yaml").read_text(encoding="utf-8"))
    assert result.status == "ok", result.detail
    check_shape(trace)
    got = {}
    for i in range(3):
        returns = events(trace, actor=f"p[{i}]", op="get", phase="return")
        assert len(returns) == 1 and returns[0]["result"] == "ok"
        got[f"p[{i}]"] = returns[0]["item"]
    assert sorted(got.values()) == ["1", "2", "3"]
    # main put all three into the queue of maxsize 3 before any child started
    last_put = max(e["seq"] for e in events(trace, actor="main", op="put", phase="return"))
    assert all(e["seq"] > last_put for e in events(trace, op="start")
               if e["actor"] != "main")
    assert_no_process_left(trace)


def test_shared_list_and_values_through_the_manager() -> None:
    result, trace = run_yaml(
        (SCENARIOS / "process_manager_list_dict.yaml").read_text(encoding="utf-8"))
    assert result.status == "ok", result.detail
    assert result.invariant_failures == []
    assert trace["final"] == {"m_list": ["Hello", "你好"], "m_dict_name": "Jack"}
    reads = {e["target"]: e["value"] for e in events(trace, actor="main", op="read")}
    assert reads == {"m_list": ["Hello", "你好"], "m_dict_name": "Jack"}
    assert_no_process_left(trace)


# Regression (found with this file, fixed in b4650c5): with process actors the shared
# variables live in a Manager dict; `write` stored a plain list there and `append` appended
# to the copy the proxy hands out, so the item was silently dropped.
def test_append_after_writing_a_list_with_processes() -> None:
    result, trace = run_yaml("""
name: write_then_append
shared:
  names: []
actors:
  - name: p
    kind: process
    steps:
      - write: {var: names, value: [Hello]}
      - append: {var: names, item: 你好}
      - read: names
""")
    assert result.status == "ok", result.detail
    assert events(trace, actor="p", op="append", item="你好")
    assert events(trace, actor="p", op="read")[0]["value"] == ["Hello", "你好"]
    assert trace["final"] == {"names": ["Hello", "你好"]}
    assert_no_process_left(trace)


# --------------------------------------------------------------------------------------------
# synchronisation between processes


LOCKED_ADD = """
name: locked_add
shared:
  counter: 0
primitives:
  L: lock
actors:
  - name: w
    kind: process
    count: 4
    steps:
      - repeat: 20
        steps:
          - with: L
            steps:
              - add: {var: counter, value: 1}
"""


def test_lock_protected_add_by_four_processes() -> None:
    result, trace = run_yaml(LOCKED_ADD)
    assert result.status == "ok", result.detail
    check_shape(trace)
    assert trace["final"] == {"counter": 80}
    assert max_holders(trace, "L") == 1
    writes = [e["value"] for e in by_seq(trace) if e["op"] == "write"]
    assert writes == list(range(1, 81))  # under the lock, every add sees the previous one
    assert len({a["pid"] for a in trace["actors"]}) == 4
    assert_no_process_left(trace)


SEMAPHORE = semaphore_of_two("process", "w", "semaphore_processes")


def test_semaphore_of_two_never_has_three_holders() -> None:
    result, trace = run_yaml(SEMAPHORE)
    assert result.status == "ok", result.detail
    check_shape(trace)
    returns = events(trace, op="acquire", phase="return")
    assert len(returns) == 12 and all(e["result"] == "ok" for e in returns)
    assert 1 <= max_holders(trace, "S") <= 2
    assert_no_process_left(trace)


BARRIER = """
name: barrier_processes
primitives:
  B: {type: barrier, parties: 3}
actors:
  - name: w
    kind: process
    count: 3
    steps:
      - log: arrive
      - wait: B
      - log: through
"""


def test_barrier_of_three_processes() -> None:
    result, trace = run_yaml(BARRIER)
    assert result.status == "ok", result.detail
    check_shape(trace)
    calls = events(trace, op="wait", target="B", phase="call")
    returns = events(trace, op="wait", target="B", phase="return")
    assert len(calls) == 3 and len(returns) == 3
    assert all(r["result"] == "ok" for r in returns)
    assert min(r["seq"] for r in returns) > max(c["seq"] for c in calls)
    through = events(trace, op="log", detail="through")
    assert min(e["seq"] for e in through) > max(c["seq"] for c in calls)
    assert_no_process_left(trace)


def condition_handoff(kind: str) -> str:
    """The waiter is inside `wait: C` before the notifier takes C (it sets `waiting` while
    holding C); the notifier holds C for 0.05 s before it notifies. In Python,
    ``with C: waiting.set(); C.wait()`` against ``waiting.wait(); with C: sleep(0.05);
    C.notify()`` always wakes the waiter."""
    return f"""
name: condition_handoff_{kind}
timeout: 1
primitives:
  C: condition
  waiting: event
actors:
  - name: waiter
    kind: {kind}
    steps:
      - with: C
        steps:
          - set: waiting
          - wait: C
          - log: woken
  - name: notifier
    kind: {kind}
    steps:
      - wait: waiting
      - with: C
        steps:
          - sleep: 0.05
          - notify: C
"""


# Regression (fixed in b4650c5): Condition.wait was sliced into POLL (0.02 s) waits, and a
# notify sent while the waiter was between slices (its slice timed out while the notifier held
# the lock) was spent on the timed-out wait and lost: threads ended in a false stall, processes
# in a timeout. A notifier holding the lock over 0.02 s before notifying always hit it.
@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["process", "thread"])
def test_condition_notify_reaches_a_waiter(kind: str) -> None:
    result, trace = run_yaml(condition_handoff(kind))
    assert result.status == "ok", result.detail
    (ret,) = events(trace, actor="waiter", op="wait", target="C", phase="return")
    (notify,) = events(trace, actor="notifier", op="notify")
    assert ret["result"] == "ok" and ret["seq"] > notify["seq"]
    assert events(trace, actor="waiter", op="log", detail="woken")
    assert_no_process_left(trace)


MIXED_THREAD_PROCESS = """
name: thread_and_process
primitives:
  to_p: queue
  to_t: queue
  t_got: event
  L: lock
shared:
  n: 0
actors:
  - name: t
    kind: thread
    steps:
      - {put: to_p, item: 从线程}
      - get: to_t
      - set: t_got
      - with: L
        steps:
          - add: {var: n, value: 1}
  - name: p
    kind: process
    steps:
      - get: to_p
      - {put: to_t, item: 从进程}
      - with: L
        steps:
          - add: {var: n, value: 1}
      - wait: t_got  # a process must not end before what it put has left it (see LOST_ITEMS)
"""


def test_thread_and_process_share_a_queue_and_a_lock() -> None:
    result, trace = run_yaml(MIXED_THREAD_PROCESS)
    assert result.status == "ok", result.detail
    check_shape(trace)
    got = {e["actor"]: e["item"] for e in events(trace, op="get", phase="return")}
    assert got == {"p": "从线程", "t": "从进程"}
    assert trace["final"] == {"n": 2}
    actors = {a["name"]: a for a in trace["actors"]}
    assert actors["t"]["pid"] == os.getpid() != actors["p"]["pid"]
    assert_no_process_left(trace)


# --------------------------------------------------------------------------------------------
# start methods


START_METHODS_SCENARIO = """
name: start_methods
shared:
  total: 0
primitives:
  q: queue
  L: lock
actors:
  - name: main
    kind: thread
    steps:
      - start: p
      - {put: q, item: 一}
      - {put: q, item: 二}
      - join: p
      - read: total
  - name: p
    kind: process
    count: 2
    autostart: false
    steps:
      - get: q
      - with: L
        steps:
          - add: {var: total, value: 5}
"""


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # 3.12+: fork + threads
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_every_start_method(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available on {sys.platform}")
    result, trace = run_with(START_METHODS_SCENARIO, start_method=method)
    assert result.status == "ok", result.detail
    check_shape(trace)
    items = sorted(e["item"] for e in events(trace, op="get", phase="return"))
    assert items == ["一", "二"]
    assert trace["final"] == {"total": 10}
    assert events(trace, actor="main", op="read", value=10)
    pids = {a["name"]: a["pid"] for a in trace["actors"]}
    assert pids["main"] == os.getpid()
    assert len({pids["p[0]"], pids["p[1]"], os.getpid()}) == 3
    assert_no_process_left(trace)


def test_start_method_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACER_START_METHOD", "spawn")
    result, trace = run_yaml(START_METHODS_SCENARIO)
    assert result.status == "ok", result.detail
    assert trace["final"] == {"total": 10}
    assert_no_process_left(trace)


def test_unknown_start_method_is_refused() -> None:
    with pytest.raises(RunFault, match="start method"):
        run_with(START_METHODS_SCENARIO, start_method="teleport")


# --------------------------------------------------------------------------------------------
# process pools (the tutorial's 进程池: Pool(5) and eight apply_async)


PROCESS_POOL = """
name: process_pool
primitives:
  P: {type: pool, workers: 5, of: process}
actors:
  - name: geek
    kind: process
    pool: P
    count: 8
    steps:
      - log: "当前进程的ID"
      - sleep: 0.02
"""


def running_at_most(trace: dict[str, Any], names: set[str]) -> int:
    """The most of ``names`` between their start and their end at once, in seq order."""
    running = top = 0
    for e in by_seq(trace):
        if e["actor"] in names and e["op"] == "start":
            running += 1
            top = max(top, running)
        elif e["actor"] in names and e["op"] == "end":
            running -= 1
    return top


def test_process_pool_runs_at_most_workers_tasks_at_once() -> None:
    result, trace = run_yaml(PROCESS_POOL)
    assert result.status == "ok", result.detail
    check_shape(trace)
    tasks = {f"geek[{i}]" for i in range(8)}
    assert 1 <= running_at_most(trace, tasks) <= 5
    assert statuses(trace) == dict.fromkeys(tasks, "ok")
    assert all(a.get("pool") == "P" for a in trace["actors"])
    for name in tasks:
        assert end_of(trace, name)["result"] == "ok"
        (callback,) = events(trace, actor=name, op="callback")
        assert callback["target"] == "P"
        assert callback["seq"] > end_of(trace, name)["seq"]
    pids = {a["pid"] for a in trace["actors"]}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 5  # the pool's workers, reused
    assert_no_process_left(trace)


@pytest.mark.timeout(30)
def test_stall_in_a_process_pool_ends_its_workers() -> None:
    # the barrier makes both tasks run (in the two workers) before either waits on `never`
    result, trace = run_yaml("""
name: pool_stall
timeout: 60
primitives:
  P: {type: pool, workers: 2, of: process}
  both: {type: barrier, parties: 2}
  never: event
actors:
  - name: task
    kind: process
    pool: P
    count: 2
    steps:
      - wait: both
      - wait: never
""")
    assert result.status == "stall", result.detail
    assert "never" in result.detail
    check_shape(trace)
    assert statuses(trace) == {"task[0]": "blocked", "task[1]": "blocked"}
    assert len(events(trace, op="wait", target="never", phase="call")) == 2
    assert not events(trace, op="callback")
    assert not events(trace, op="end")
    assert_no_process_left(trace)


POOL_STARVATION = """
name: pool_starvation_processes
timeout: 60
primitives:
  P: {type: pool, workers: 1, of: process}
  ready: event
actors:
  - name: waiter
    kind: process
    pool: P
    steps:
      - wait: ready
  - name: setter
    kind: process
    pool: P
    steps:
      - set: ready
"""


@pytest.mark.timeout(30)
def test_process_pool_starvation_is_a_deadlock() -> None:
    # the only worker runs the waiter; the setter, queued behind it, never gets one
    result, trace = run_yaml(POOL_STARVATION)
    assert result.status == "deadlock", result.detail
    assert "setter is queued in pool P behind waiter" in result.detail
    assert statuses(trace)["waiter"] == "blocked"
    last = by_seq(trace)[-1]
    assert last["op"] == "deadlock" and set(last["actors"]) == {"waiter", "setter"}
    assert_no_process_left(trace)


# Regression (found with this file, fixed in b4650c5): a process actor that started after the
# run was closed re-opened it: ChildRuntime.__init__ ran Runtime.__init__, whose
# `self.closed = False` went through ChildRuntime's setter and cleared the run's shared abort
# flag. A pool task queued when the watchdog ended the run then got a worker and ran as if
# nothing had happened.


# before the fix: setter, which the deadlock event says can never run, started, set ready,
# ended ok and got a callback, all recorded before the deadlock event
@pytest.mark.timeout(30)
def test_task_queued_behind_a_deadlock_records_nothing() -> None:
    result, trace = run_yaml(POOL_STARVATION)
    assert result.status == "deadlock", result.detail
    assert events(trace, actor="setter") == []
    assert statuses(trace)["setter"] in ("blocked", "not_started")
    assert_no_process_left(trace)


# before the fix: task[1] started after the stall, cleared the abort flag and waited for
# good; teardown waited 5 s for it, terminated the pool and reported task[1] as an error
# ("the pool worker running task[1] died"), with seq gaps where its events had been
@pytest.mark.timeout(30)
def test_stall_with_a_queued_pool_task_ends_promptly_and_cleanly() -> None:
    result, trace = run_yaml("""
name: pool_stall_queued
timeout: 60
primitives:
  P: {type: pool, workers: 1, of: process}
  never: event
actors:
  - name: task
    kind: process
    pool: P
    count: 2
    steps:
      - wait: never
""")
    assert result.status == "stall", result.detail
    assert result.duration < 4.0  # not the 5 s grace for a task that would not stop
    assert events(trace, actor="task[1]") == []
    assert statuses(trace)["task[1]"] in ("blocked", "not_started")
    evs = trace["events"]
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    assert_no_process_left(trace)


# --------------------------------------------------------------------------------------------
# how runs with processes end: no child survives any of them


ABBA = abba("process", "p1", "p2", "abba_processes")


@pytest.mark.timeout(30)
def test_cross_process_deadlock_is_detected_and_children_end() -> None:
    result, trace = run_yaml(ABBA)
    assert result.status == "deadlock", result.detail
    check_shape(trace)
    last = by_seq(trace)[-1]
    assert last["op"] == "deadlock" and last["actor"] is None
    assert set(last["actors"]) == {"p1", "p2"}
    assert {"A", "B"} <= set(last["objects"])
    detail = trace["outcome"]["detail"]
    assert "p1 holds A (line 13) and waits for B (line 16)" in detail
    assert "p2 holds B (line 22) and waits for A (line 25)" in detail
    blocked = sorted((e["actor"], e["target"]) for e in events(trace, op="acquire", phase="call")
                     if not any(r["actor"] == e["actor"] and r["target"] == e["target"]
                                for r in events(trace, op="acquire", phase="return")))
    assert blocked == [("p1", "B"), ("p2", "A")]
    assert statuses(trace) == {"p1": "blocked", "p2": "blocked"}
    assert not events(trace, op="end")
    assert_no_process_left(trace)


@pytest.mark.timeout(30)
def test_stall_of_a_process_ends_its_child() -> None:
    result, trace = run_yaml("""
name: stall_process
timeout: 60
primitives:
  起飞: event
  here: event
actors:
  - name: waiter
    kind: process
    steps:
      - wait: here  # both children are running before the stall can be seen
      - wait: 起飞
  - name: bystander
    kind: process
    steps:
      - log: "nothing to do with it"
      - set: here
""")
    assert result.status == "stall", result.detail
    check_shape(trace)
    last = by_seq(trace)[-1]
    assert last["op"] == "stall" and last["actors"] == ["waiter"]
    assert "起飞" in last["detail"]
    assert end_of(trace, "bystander")["result"] == "ok"
    assert statuses(trace)["waiter"] == "blocked"
    assert_no_process_left(trace)


@pytest.mark.timeout(30)
def test_timeout_ends_a_sleeping_child() -> None:
    result, trace = run_yaml("""
name: slow_process
timeout: 0.5
actors:
  - name: sleeper
    kind: process
    steps:
      - sleep: 30
      - log: never
""")
    assert result.status == "timeout", result.detail
    assert result.duration < 15  # stopped, not waited for
    check_shape(trace)
    last = by_seq(trace)[-1]
    assert last["op"] == "timeout" and "sleeper" in last["actors"]
    assert not events(trace, op="log")
    assert statuses(trace) == {"sleeper": "cancelled"}
    assert_no_process_left(trace)


def test_normal_run_leaves_no_child() -> None:
    result, trace = run_yaml(TWO_CHILDREN)
    assert result.status == "ok"
    assert_no_process_left(trace)


def test_daemon_process_is_abandoned_and_stopped() -> None:
    result, trace = run_yaml("""
name: daemon_process
timeout: 60
primitives:
  P: {type: pipe, between: [t, p]}
  R: rlock
actors:
  - name: d
    kind: process
    daemon: true
    steps:
      - sleep: 30
      - log: never
  - name: t
    kind: thread
    steps:
      - {send: P, item: 线程问候}
      - recv: P
  - name: p
    kind: process
    steps:
      - with: R
        steps:
          - with: R
            steps:
              - recv: P
              - {send: P, item: 进程回答}
""")
    assert result.status == "ok", result.detail
    assert result.duration < 15
    check_shape(trace)
    got = {e["actor"]: e["item"] for e in events(trace, op="recv", phase="return")}
    assert got == {"p": "线程问候", "t": "进程回答"}
    assert end_of(trace, "d")["result"] == "abandoned"
    assert not events(trace, actor="d", op="log")
    assert statuses(trace)["d"] == "abandoned" and statuses(trace)["t"] == "ok"
    assert end_of(trace, "p")["result"] == "ok"
    assert max_holders(trace, "R") == 2  # re-entered by its one holder
    assert_no_process_left(trace)


def test_fail_in_a_process_is_its_error_and_others_go_on() -> None:
    result, trace = run_yaml("""
name: boom_process
primitives:
  L: lock
  failing: event
actors:
  - name: bad
    kind: process
    steps:
      - log: before
      - with: L
        steps:
          - set: failing
          - fail: boom
      - log: after
  - name: good
    kind: process
    steps:
      - wait: failing
      - with: L
        steps:
          - log: working
      - log: done
""")
    assert result.status == "error"
    check_shape(trace)
    assert "boom" in result.detail and "bad" in result.detail
    end = end_of(trace, "bad")
    assert end["result"] == "error" and "boom" in end["error"]
    assert not events(trace, actor="bad", op="log", detail="after")
    assert end_of(trace, "good")["result"] == "ok"
    assert events(trace, actor="good", op="log", detail="done")
    # the with block released L on the way out, so good could take it
    assert max_holders(trace, "L") == 1
    assert statuses(trace)["bad"] == "error"
    assert_no_process_left(trace)


KILLED = """
name: killed
timeout: 60
primitives:
  ready: event
  never: event
actors:
  - name: victim
    kind: process
    steps:
      - set: ready
      - wait: never
  - name: other
    kind: process
    steps:
      - log: still here
"""


def run_with_a_killed_child() -> tuple[RunResult, dict[str, Any]]:
    """Run KILLED and SIGKILL the victim while it waits on `never`.

    Deterministic without sleeps: `on_started` runs in the calling thread before the
    watchdog's first look; it blocks on the victim's `ready` event, then reads the victim's
    board row until its wait call is recorded (a few microseconds), kills it and reaps it.
    Only then does the watchdog start, and it must find an ended child, not a stall."""
    from tracer.engine._run import Runner

    holder: dict[str, Any] = {}

    def kill_victim() -> None:
        runner = holder["runner"]
        runner.prims["ready"].real.wait()  # the victim has set it
        ctx = runner.ctx["victim"]
        while True:
            w = ctx.waiting
            if w is not None and w[3] >= 0:  # in the real wait, its call recorded
                break
        os.kill(ctx.pid, signal.SIGKILL)
        ctx.thread.join()

    with gc_paused():  # what run_plan does around a Runner (see tracer._gc)
        runner = Runner(load_scenario_text(KILLED, "<test>"), on_started=kill_victim)
        holder["runner"] = runner
        result = runner.run()
        holder.clear()
        del runner
        collect_run(True)
    return result, json.loads(result.to_json())


needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


@pytest.mark.timeout(30)
def test_result_of_a_process_reaches_the_outcome_even_if_the_collector_is_slow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from tracer.engine import _proc

    original = _proc.Collector.receive

    def slow_receive(self: Any, name: str, batch: Any) -> None:
        threading.Event().wait(1.0)  # a busy collector: 100 watchdog ticks
        original(self, name, batch)

    monkeypatch.setattr(_proc.Collector, "receive", slow_receive)
    result, trace = run_yaml("""
name: late_result
actors:
  - name: bad
    kind: process
    steps:
      - fail: boom
  - name: good
    kind: process
    steps:
      - log: fine
""")
    assert end_of(trace, "bad")["result"] == "error"  # the events did arrive
    assert result.status == "error", result.detail
    assert "boom" in result.detail
    assert statuses(trace) == {"bad": "error", "good": "ok"}
    assert_no_process_left(trace)


@pytest.mark.timeout(30)
@needs_sigkill
def test_child_killed_from_outside_is_an_error_and_others_go_on() -> None:
    result, trace = run_with_a_killed_child()
    assert result.status == "error", result.detail
    seqs = [e["seq"] for e in trace["events"]]
    assert seqs == sorted(set(seqs))
    end = end_of(trace, "victim")
    assert end["result"] == "error"
    assert "signal" in end["error"] and str(int(signal.SIGKILL)) in end["error"]
    assert "victim" in result.detail
    assert end_of(trace, "other")["result"] == "ok"
    assert events(trace, actor="other", op="log", detail="still here")
    assert statuses(trace)["victim"] == "error"
    assert_no_process_left(trace)


# Regression (found with this file, fixed in b4650c5): the killed child's unshipped events had
# taken seq numbers from the shared counter, so the trace's seq had gaps (0, 1, 2, 6) and
# tracer's own trace reader refused it ("events[3] has seq 6; seq must run 0, 1, 2, ...").
@pytest.mark.timeout(30)
@needs_sigkill
def test_trace_of_a_run_with_a_killed_child_keeps_seq_without_gaps() -> None:
    from tracer.analyze import parse_trace_data

    result, trace = run_with_a_killed_child()
    assert result.status == "error"
    evs = trace["events"]
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    parse_trace_data(result.to_json(), "<killed>")
    assert_no_process_left(trace)


# --------------------------------------------------------------------------------------------
# no multiprocessing lock is left to the cyclic garbage collector
#
# Regression (CPython 3.13.0 to 3.13.6, python/cpython#109593 and #131788): a run left its
# multiprocessing locks in reference cycles; collected at a later moment of the collector's
# choosing, their finalizers ran inside a call of the resource tracker, which refused
# ("Exception ignored in: <Finalize object, dead>", ReentrantCallError) on stderr. Checked on
# every version: what is left to the collector after the run, with it off so nothing hides it.


def semlocks_left_to_the_collector(run: Callable[[], object]) -> int:
    """How many multiprocessing locks ``run()`` leaves in reference cycles."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        run()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return sum(isinstance(o, SemLock) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["process_deadlock", "process_pool_starvation",
                                  "process_class"])
def test_a_run_leaves_no_multiprocessing_lock_to_the_garbage_collector(name: str) -> None:
    plan = load_scenario_text((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"), name)
    outcome: list[str] = []
    assert semlocks_left_to_the_collector(
        lambda: outcome.append(run_plan(plan).status)) == 0
    assert outcome and outcome[0] in ("ok", "deadlock")


# --------------------------------------------------------------------------------------------
# what the checker and `tracer run` refuse (exit 2)


def bad_input(proc: Any, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


PROCESS_JOINS = """
name: process_joins
actors:
  - name: boss
    kind: process
    steps:
      - join: worker
  - name: worker
    kind: thread
    steps:
      - log: hi
"""

PROCESS_STARTS = """
name: process_starts
actors:
  - name: boss
    kind: process
    steps:
      - start: worker
  - name: worker
    kind: process
    autostart: false
    steps:
      - log: hi
"""

COROUTINE_AND_PROCESS = """
name: coroutine_and_process
primitives:
  L: lock
actors:
  - name: co
    kind: coroutine
    steps:
      - with: L
        steps: [{log: hi}]
  - name: p
    kind: process
    steps:
      - with: L
        steps: [{log: hi}]
"""


@pytest.mark.parametrize(("text", "needles"), [
    pytest.param(PROCESS_JOINS, ["s.yaml:", "actors[0].steps[0]",
                                 "a process actor cannot join other actors"], id="join"),
    pytest.param(PROCESS_STARTS, ["s.yaml:", "actors[0].steps[0]",
                                  "a process actor cannot start other actors"], id="start"),
    pytest.param(COROUTINE_AND_PROCESS, ["s.yaml:", "primitives.L", "coroutine", "process"],
                 id="coroutine-and-process"),
])
def test_validation_refuses(tmp_path: Path, text: str, needles: list[str]) -> None:
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    bad_input(tracer_cli("validate", "s.yaml", cwd=tmp_path), *needles)
    proc = tracer_cli("run", "s.yaml", cwd=tmp_path)
    bad_input(proc, *needles)
    assert "running" not in proc.stdout
    assert not (tmp_path / "traces").exists()


# --------------------------------------------------------------------------------------------
# the bundled process scenarios


PROCESS_SCENARIOS = sorted(p for p in SCENARIOS.glob("*.yaml")
                           if p.stem.startswith("process_") or p.stem == "mixed_kinds")


def test_process_scenarios_are_bundled() -> None:
    names = {p.stem for p in PROCESS_SCENARIOS}
    assert {"process_function", "process_class", "process_queue_manager", "process_pipe",
            "process_manager_list_dict", "process_deadlock", "process_producer_consumer",
            "process_pool", "mixed_kinds"} <= names
