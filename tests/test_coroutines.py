"""Coroutine actors: asyncio tasks on one event loop (in a thread of its own), read from the
trace.

Coroutines switch only at awaits, so most orders here are certain; where an order between
actors matters anyway, scenarios enforce it with events, not sleeps. The autouse fixture of
conftest fails a test that leaves a tracer thread (the event loop's included) alive.
"""

from __future__ import annotations

import os
import sys
import threading
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

# --------------------------------------------------------------------------------------------
# helpers







def loop_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.is_alive() and "event loop" in t.name]


# --------------------------------------------------------------------------------------------
# lock, semaphore


LOCKED = """
name: aio_locked
shared:
  counter: 0
primitives:
  L: lock
actors:
  - name: c
    kind: coroutine
    count: 3
    steps:
      - repeat: 10
        steps:
          - with: L
            steps:
              - add: {var: counter, value: 1}
              - sleep: 0
"""


def test_asyncio_lock_mutual_exclusion() -> None:
    result, trace = run_yaml(LOCKED)
    assert result.status == "ok", result.detail
    check_shape(trace)
    assert max_holders(trace, "L") == 1
    assert trace["final"] == {"counter": 30}
    writes = [e["value"] for e in by_seq(trace) if e["op"] == "write"]
    assert writes == list(range(1, 31))
    acquires = events(trace, op="acquire", phase="return")
    assert len(acquires) == 30 and all(e["result"] == "ok" for e in acquires)
    assert statuses(trace) == {"c[0]": "ok", "c[1]": "ok", "c[2]": "ok"}


def test_coroutines_run_in_one_loop_thread_of_this_process() -> None:
    result, trace = run_yaml(LOCKED)
    assert result.status == "ok", result.detail
    assert {a["kind"] for a in trace["actors"]} == {"coroutine"}
    assert {a["pid"] for a in trace["actors"]} == {os.getpid()}
    tids = {a["tid"] for a in trace["actors"]}
    assert len(tids) == 1 and threading.get_native_id() not in tids
    assert loop_threads() == []


SEMAPHORE = semaphore_of_two("coroutine", "c", "aio_semaphore")


def test_asyncio_semaphore_bound() -> None:
    result, trace = run_yaml(SEMAPHORE)
    assert result.status == "ok", result.detail
    check_shape(trace)
    acquires = events(trace, op="acquire", phase="return")
    assert len(acquires) == 12 and all(e["result"] == "ok" for e in acquires)
    assert 1 <= max_holders(trace, "S") <= 2


def test_asyncio_semaphore_blocks_the_third_for_good() -> None:
    result, trace = run_yaml("""
name: aio_semaphore_full
timeout: 60
primitives:
  S: {type: semaphore, value: 2}
actors:
  - name: c
    kind: coroutine
    count: 3
    steps:
      - acquire: S
""")
    assert result.status in {"deadlock", "stall"}, result.detail
    check_shape(trace)
    oks = events(trace, op="acquire", phase="return", result="ok")
    assert len(oks) == 2
    assert len(events(trace, op="acquire", phase="call")) == 3
    # the two holders ended holding S; the third waits for good
    assert sorted(statuses(trace).values()) == ["blocked", "ok", "ok"]
    assert by_seq(trace)[-1]["op"] == result.status


def test_asyncio_bounded_semaphore_released_too_often_is_an_error() -> None:
    result, trace = run_yaml("""
name: aio_bounded
primitives:
  S: {type: bounded_semaphore, value: 1}
actors:
  - name: bad
    kind: coroutine
    steps:
      - release: S
      - log: never
  - name: good
    kind: coroutine
    steps:
      - with: S
        steps: [{log: fine}]
""")
    assert result.status == "error"
    check_shape(trace)
    end = end_of(trace, "bad")
    assert end["result"] == "error" and "S" in end["error"]
    assert not events(trace, actor="bad", op="log")
    assert end_of(trace, "good")["result"] == "ok"


def test_return_inside_with_releases_the_asyncio_lock() -> None:
    result, trace = run_yaml("""
name: aio_return
primitives:
  L: lock
  first_done: event
actors:
  - name: first
    kind: coroutine
    steps:
      - with: L
        steps:
          - set: first_done
          - return: true
          - log: never
  - name: second
    kind: coroutine
    steps:
      - wait: first_done
      - with: L
        steps: [{log: got it}]
""")
    assert result.status == "ok", result.detail
    check_shape(trace)
    assert not events(trace, actor="first", op="log")
    (rel,) = events(trace, actor="first", op="release", target="L")
    (acq,) = events(trace, actor="second", op="acquire", target="L", phase="return")
    assert acq["result"] == "ok" and acq["seq"] > rel["seq"]


# --------------------------------------------------------------------------------------------
# event, condition, barrier


def test_asyncio_event_wakes_its_waiters_after_the_set() -> None:
    result, trace = run_yaml("""
name: aio_event
primitives:
  E: event
actors:
  - name: waiter
    kind: coroutine
    count: 2
    steps:
      - wait: E
      - log: woken
  - name: setter
    kind: coroutine
    steps:
      - sleep: 0.01
      - set: E
""")
    assert result.status == "ok", result.detail
    check_shape(trace)
    (set_,) = events(trace, actor="setter", op="set")
    returns = events(trace, op="wait", target="E", phase="return")
    assert len(returns) == 2
    assert all(r["result"] == "ok" and r["seq"] > set_["seq"] for r in returns)


def test_asyncio_event_wait_timeout() -> None:
    result, trace = run_yaml("""
name: aio_event_timeout
primitives:
  E: event
actors:
  - name: waiter
    kind: coroutine
    steps:
      - {wait: E, timeout: 0.05}
      - log: gave up
""")
    assert result.status == "ok", result.detail
    (ret,) = events(trace, op="wait", phase="return")
    assert ret["result"] == "timeout"
    assert events(trace, op="log", detail="gave up")


def test_asyncio_condition_notify_wakes_the_waiter() -> None:
    # the waiter is inside `wait: C` before the notifier can take C; the notifier holds C
    # for a while before it notifies (the case that loses the notify for threads and
    # processes, see test_processes.test_condition_notify_reaches_a_waiter)
    result, trace = run_yaml("""
name: aio_condition
timeout: 5
primitives:
  C: condition
  waiting: event
actors:
  - name: waiter
    kind: coroutine
    steps:
      - with: C
        steps:
          - set: waiting
          - wait: C
          - log: woken
  - name: notifier
    kind: coroutine
    steps:
      - wait: waiting
      - with: C
        steps:
          - sleep: 0.05
          - notify: C
""")
    assert result.status == "ok", result.detail
    check_shape(trace)
    (ret,) = events(trace, actor="waiter", op="wait", target="C", phase="return")
    (notify,) = events(trace, actor="notifier", op="notify")
    assert ret["result"] == "ok" and ret["seq"] > notify["seq"]
    assert max_holders(trace, "C") == 1


def test_asyncio_condition_predicate_and_notify_all() -> None:
    result, trace = run_yaml("""
name: aio_condition_all
shared:
  ready: 0
primitives:
  C: condition
actors:
  - name: waiter
    kind: coroutine
    count: 2
    steps:
      - with: C
        steps:
          - if: {var: ready, op: "==", value: 0}
            then:
              - wait: C
          - read: ready
  - name: notifier
    kind: coroutine
    steps:
      - sleep: 0.01
      - with: C
        steps:
          - write: {var: ready, value: 1}
          - notify_all: C
""")
    assert result.status == "ok", result.detail
    check_shape(trace)
    assert len(events(trace, op="read", value=1)) == 2
    (notify,) = events(trace, actor="notifier", op="notify_all")
    for r in events(trace, op="wait", phase="return"):
        assert r["result"] == "ok" and r["seq"] > notify["seq"]
    assert max_holders(trace, "C") == 1


def test_asyncio_condition_wait_without_its_lock_is_an_error() -> None:
    result, trace = run_yaml("""
name: aio_condition_misuse
primitives:
  C: condition
actors:
  - name: c
    kind: coroutine
    steps:
      - wait: C
""")
    assert result.status == "error"
    end = end_of(trace, "c")
    assert end["result"] == "error" and "C" in end["error"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Barrier needs 3.11")
def test_asyncio_barrier_releases_nobody_before_all_arrive() -> None:
    result, trace = run_yaml("""
name: aio_barrier
primitives:
  B: {type: barrier, parties: 3}
actors:
  - name: c
    kind: coroutine
    count: 3
    steps:
      - sleep: 0.005
      - wait: B
      - log: through
""")
    assert result.status == "ok", result.detail
    check_shape(trace)
    calls = events(trace, op="wait", phase="call")
    returns = events(trace, op="wait", phase="return")
    assert len(calls) == 3 and len(returns) == 3
    assert all(r["result"] == "ok" for r in returns)
    assert min(r["seq"] for r in returns) > max(c["seq"] for c in calls)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Barrier needs 3.11")
def test_asyncio_barrier_short_of_parties_stalls_and_ends() -> None:
    result, trace = run_yaml("""
name: aio_barrier_short
timeout: 60
primitives:
  B: {type: barrier, parties: 3}
actors:
  - name: c
    kind: coroutine
    count: 2
    steps:
      - wait: B
""")
    assert result.status == "stall", result.detail
    assert "B" in result.detail
    assert statuses(trace) == {"c[0]": "blocked", "c[1]": "blocked"}
    assert loop_threads() == []


# --------------------------------------------------------------------------------------------
# queue


def test_asyncio_queue_fifo_and_maxsize() -> None:
    result, trace = run_yaml("""
name: aio_queue
primitives:
  Q: {type: queue, maxsize: 2}
actors:
  - name: producer
    kind: coroutine
    steps:
      - repeat: 6
        steps:
          - put: Q
  - name: consumer
    kind: coroutine
    steps:
      - repeat: 6
        steps:
          - get: Q
          - sleep: 0.002
""")
    assert result.status == "ok", result.detail
    check_shape(trace)
    put = [e["item"] for e in events(trace, op="put", phase="call")]
    got = [e["item"] for e in events(trace, op="get", phase="return")]
    assert put == [f"producer#{i}" for i in range(1, 7)]
    assert got == put
    puts_done = gets_called = 0
    for e in by_seq(trace):
        if e["op"] == "put" and e.get("phase") == "return":
            puts_done += 1
        elif e["op"] == "get" and e.get("phase") == "call":
            gets_called += 1
        assert puts_done <= 2 + gets_called


def test_fourth_put_on_a_full_asyncio_queue_stalls() -> None:
    result, trace = run_yaml("""
name: aio_queue_full
timeout: 60
primitives:
  Q: {type: queue, maxsize: 3}
actors:
  - name: producer
    kind: coroutine
    steps:
      - {put: Q, item: 馒头1}
      - {put: Q, item: 馒头2}
      - {put: Q, item: 馒头3}
      - {put: Q, item: 馒头4}
      - log: never
""")
    assert result.status == "stall", result.detail
    check_shape(trace)
    assert len(events(trace, op="put", phase="call")) == 4
    returns = events(trace, op="put", phase="return")
    assert len(returns) == 3 and all(r["result"] == "ok" for r in returns)
    last = by_seq(trace)[-1]
    assert last["op"] == "stall" and last["actors"] == ["producer"]
    assert "Q" in last["detail"]
    assert not events(trace, op="log")
    assert statuses(trace) == {"producer": "blocked"}


def test_asyncio_queue_nonblocking_get_fails_on_empty() -> None:
    result, trace = run_yaml("""
name: aio_queue_nowait
primitives:
  Q: {type: queue, maxsize: 1}
actors:
  - name: c
    kind: coroutine
    steps:
      - {get: Q, blocking: false}
      - {put: Q, item: a}
      - {put: Q, item: b, blocking: false}
      - {get: Q, timeout: 0.05}
      - {get: Q, timeout: 0.02}
""")
    assert result.status == "ok", result.detail
    results = [(e["op"], e["result"]) for e in events(trace, phase="return")]
    assert results == [("get", "fail"), ("put", "ok"), ("put", "fail"), ("get", "ok"),
                       ("get", "timeout")]
    assert events(trace, op="get", phase="return", result="ok")[0]["item"] == "a"


# --------------------------------------------------------------------------------------------
# shared variables: the only switch points are awaits


def adders(with_lock: bool) -> str:
    body = ("""
          - with: L
            steps:
              - add: {var: counter, value: 1}""" if with_lock else """
          - add: {var: counter, value: 1}""")
    # b sets go and starts adding; a, waiting on go, wakes at b's first await (the one
    # inside its add, between read and write): from then on they alternate
    return f"""
name: aio_adders
shared:
  counter: 0
primitives:
  go: event
  L: lock
actors:
  - name: a
    kind: coroutine
    steps:
      - wait: go
      - repeat: 10
        steps:{body}
  - name: b
    kind: coroutine
    steps:
      - set: go
      - repeat: 10
        steps:{body}
"""


def test_add_between_coroutines_without_a_lock_loses_updates() -> None:
    result, trace = run_yaml(adders(with_lock=False))
    assert result.status == "ok", result.detail
    check_shape(trace)
    assert trace["final"]["counter"] < 20
    # a lost update shows as a write of the value another write already wrote
    writes = [e["value"] for e in by_seq(trace) if e["op"] == "write"]
    assert len(writes) == 20 and len(set(writes)) < 20


def test_add_between_coroutines_with_a_lock_never_loses_updates() -> None:
    result, trace = run_yaml(adders(with_lock=True))
    assert result.status == "ok", result.detail
    check_shape(trace)
    assert trace["final"] == {"counter": 20}
    writes = [e["value"] for e in by_seq(trace) if e["op"] == "write"]
    assert writes == list(range(1, 21))
    assert max_holders(trace, "L") == 1
    # both took part: the lock was contended, not run one after the other by chance
    assert {e["actor"] for e in events(trace, op="write")} == {"a", "b"}


# --------------------------------------------------------------------------------------------
# how coroutine runs end


ABBA = abba("coroutine", "c1", "c2", "aio_abba")


@pytest.mark.timeout(30)
def test_asyncio_abba_deadlock_is_detected_and_the_run_ends() -> None:
    result, trace = run_yaml(ABBA)
    assert result.status == "deadlock", result.detail
    assert result.duration < 10
    check_shape(trace)
    last = by_seq(trace)[-1]
    assert last["op"] == "deadlock" and last["actor"] is None
    assert set(last["actors"]) == {"c1", "c2"}
    assert {"A", "B"} <= set(last["objects"])
    assert "c1 holds A (line 13) and waits for B (line 16)" in result.detail
    assert "c2 holds B (line 22) and waits for A (line 25)" in result.detail
    assert statuses(trace) == {"c1": "blocked", "c2": "blocked"}
    assert not events(trace, op="end")
    assert not events(trace, op="release")
    assert loop_threads() == []


@pytest.mark.timeout(30)
def test_asyncio_stall_on_an_event_nobody_sets() -> None:
    result, trace = run_yaml("""
name: aio_stall
timeout: 60
primitives:
  起飞: event
actors:
  - name: waiter
    kind: coroutine
    steps:
      - wait: 起飞
  - name: bystander
    kind: coroutine
    steps:
      - log: nothing to do with it
""")
    assert result.status == "stall", result.detail
    check_shape(trace)
    last = by_seq(trace)[-1]
    assert last["op"] == "stall" and last["actors"] == ["waiter"]
    assert "起飞" in last["detail"]
    assert statuses(trace) == {"waiter": "blocked", "bystander": "ok"}


@pytest.mark.timeout(30)
def test_timeout_cancels_a_sleeping_coroutine() -> None:
    result, trace = run_yaml("""
name: aio_slow
timeout: 0.3
actors:
  - name: sleeper
    kind: coroutine
    steps:
      - sleep: 30
      - log: never
""")
    assert result.status == "timeout", result.detail
    assert result.duration < 5
    check_shape(trace)
    last = by_seq(trace)[-1]
    assert last["op"] == "timeout" and "sleeper" in last["actors"]
    assert not events(trace, op="log")
    assert statuses(trace) == {"sleeper": "cancelled"}
    assert loop_threads() == []


def test_daemon_coroutine_is_abandoned_and_cancelled() -> None:
    result, trace = run_yaml("""
name: aio_daemon
timeout: 60
actors:
  - name: d
    kind: coroutine
    daemon: true
    steps:
      - sleep: 30
      - log: never
  - name: main
    kind: coroutine
    steps:
      - log: hi
""")
    assert result.status == "ok", result.detail
    assert result.duration < 10
    check_shape(trace)
    assert end_of(trace, "d")["result"] == "abandoned"
    assert not events(trace, actor="d", op="log")
    assert statuses(trace) == {"d": "abandoned", "main": "ok"}
    assert loop_threads() == []


def test_fail_in_a_coroutine_and_the_others_go_on() -> None:
    result, trace = run_yaml("""
name: aio_boom
primitives:
  L: lock
actors:
  - name: bad
    kind: coroutine
    steps:
      - with: L
        steps:
          - fail: boom
      - log: after
  - name: good
    kind: coroutine
    steps:
      - sleep: 0.01
      - with: L
        steps: [{log: working}]
""")
    assert result.status == "error"
    check_shape(trace)
    end = end_of(trace, "bad")
    assert end["result"] == "error" and "boom" in end["error"]
    assert not events(trace, actor="bad", op="log")
    assert end_of(trace, "good")["result"] == "ok"
    assert max_holders(trace, "L") == 1  # the with released L on the way out


# --------------------------------------------------------------------------------------------
# coroutines beside threads


def test_thread_and_coroutine_start_and_join_each_other() -> None:
    result, trace = run_yaml("""
name: thread_and_coroutine
primitives:
  co_lock: lock
  t_lock: lock
actors:
  - name: main
    kind: thread
    steps:
      - start: co
      - join: co
      - with: t_lock
        steps: [{log: main after co}]
  - name: co
    kind: coroutine
    autostart: false
    steps:
      - sleep: 0.01
      - with: co_lock
        steps: [{log: co}]
  - name: boss
    kind: coroutine
    steps:
      - start: t
      - join: t
      - join: co2
      - log: boss after t and co2
  - name: co2
    kind: coroutine
    steps:
      - sleep: 0.005
  - name: t
    kind: thread
    autostart: false
    steps:
      - sleep: 0.01
      - with: t_lock
        steps: [{log: t}]
""")
    assert result.status == "ok", result.detail
    check_shape(trace)
    for joiner, target in (("main", "co"), ("boss", "t"), ("boss", "co2")):
        (ret,) = events(trace, actor=joiner, op="join", target=target, phase="return")
        assert ret["result"] == "ok"
        assert ret["seq"] > end_of(trace, target)["seq"]
    for starter, target in (("main", "co"), ("boss", "t")):
        (spawn,) = events(trace, actor=starter, op="spawn", target=target)
        (start,) = events(trace, actor=target, op="start")
        assert start["seq"] > spawn["seq"]
    (log,) = events(trace, actor="main", op="log")
    assert log["seq"] > end_of(trace, "co")["seq"]
    actors = {a["name"]: a for a in trace["actors"]}
    assert {a["pid"] for a in actors.values()} == {os.getpid()}
    assert actors["co"]["tid"] == actors["boss"]["tid"] == actors["co2"]["tid"]
    assert actors["main"]["tid"] != actors["co"]["tid"] != actors["t"]["tid"]
    assert set(statuses(trace).values()) == {"ok"}


# Regression (fixed in b4650c5): joining an actor that starts by itself but comes later in the
# file failed with "main cannot join co: it was never started": the runner started actors one
# by one in file order, and join took the target's 'pending' state for "never started". The
# process actor in between (slow to start) made the window wide.
def test_join_of_an_autostarting_coroutine_later_in_the_file() -> None:
    result, trace = run_yaml("""
name: join_autostart
actors:
  - name: main
    kind: thread
    steps:
      - join: co
      - log: joined
  - name: p
    kind: process
    steps:
      - log: hi
  - name: co
    kind: coroutine
    steps:
      - log: hi
""")
    assert result.status == "ok", result.detail
    (ret,) = events(trace, actor="main", op="join", target="co", phase="return")
    assert ret["result"] == "ok" and ret["seq"] > end_of(trace, "co")["seq"]


def test_join_of_a_coroutine_never_started_is_an_error() -> None:
    result, trace = run_yaml("""
name: aio_join_unstarted
actors:
  - name: boss
    kind: coroutine
    steps:
      - join: idle
  - name: idle
    kind: coroutine
    autostart: false
    steps:
      - log: never
""")
    assert result.status == "error"
    end = end_of(trace, "boss")
    assert end["result"] == "error" and "idle" in end["error"]
    assert statuses(trace)["idle"] == "not_started"


# --------------------------------------------------------------------------------------------
# what the checker refuses (exit 2)


def bad_input(proc: Any, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


RLOCK = """
name: aio_rlock
primitives:
  R: rlock
actors:
  - name: c
    kind: coroutine
    steps:
      - with: R
        steps: [{log: hi}]
"""

PIPE = """
name: aio_pipe
primitives:
  P: {type: pipe, between: [a, b]}
actors:
  - name: a
    kind: coroutine
    steps:
      - {send: P, item: hello}
  - name: b
    kind: coroutine
    steps:
      - recv: P
"""

SHARED_WITH_A_THREAD = """
name: aio_and_thread
primitives:
  Q: queue
actors:
  - name: c
    kind: coroutine
    steps:
      - put: Q
  - name: t
    kind: thread
    steps:
      - get: Q
"""


@pytest.mark.parametrize(("text", "needles"), [
    pytest.param(RLOCK, ["s.yaml:", "primitives.R", "asyncio has no rlock"], id="rlock"),
    pytest.param(PIPE, ["s.yaml:", "primitives.P", "pipe", "coroutines talk through a queue"],
                 id="pipe"),
    pytest.param(SHARED_WITH_A_THREAD, ["s.yaml:", "primitives.Q", "coroutine", "thread"],
                 id="shared-with-a-thread"),
])
def test_validation_refuses(tmp_path: Path, text: str, needles: list[str]) -> None:
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    bad_input(tracer_cli("validate", "s.yaml", cwd=tmp_path), *needles)
    proc = tracer_cli("run", "s.yaml", cwd=tmp_path)
    bad_input(proc, *needles)
    assert "running" not in proc.stdout
    assert not (tmp_path / "traces").exists()


# --------------------------------------------------------------------------------------------
# the bundled coroutine scenarios


AIO_SCENARIOS = sorted(SCENARIOS.glob("asyncio_*.yaml"))


def test_asyncio_scenarios_are_bundled() -> None:
    assert {p.stem for p in AIO_SCENARIOS} >= {"asyncio_gather", "asyncio_deadlock",
                                               "asyncio_dining_philosophers"}



def test_gather_interleaves_beijing_and_shanghai() -> None:
    result, trace = run_yaml((SCENARIOS / "asyncio_gather.yaml").read_text(encoding="utf-8"))
    assert result.status == "ok", result.detail
    logs = [(e["actor"], e["detail"]) for e in by_seq(trace) if e["op"] == "log"]
    for city, done in (("北京", "func1执行完毕"), ("上海", "func2执行完毕")):
        mine = [d for a, d in logs if a == city]
        assert mine == [f"{city}:第{i}次打印" for i in range(3)] + [done]
    # while one awaits its sleep the other prints: 上海's first line comes before 北京's second
    order = [d for _, d in logs]
    assert order.index("上海:第0次打印") < order.index("北京:第1次打印")
    assert order.index("北京:第0次打印") < order.index("上海:第1次打印")


def test_dining_philosophers_deadlock_names_all_three() -> None:
    result, trace = run_yaml(
        (SCENARIOS / "asyncio_dining_philosophers.yaml").read_text(encoding="utf-8"))
    assert result.status == "deadlock", result.detail
    last = by_seq(trace)[-1]
    assert set(last["actors"]) == {"P0", "P1", "P2"}
    assert {"fork0", "fork1", "fork2"} <= set(last["objects"])
    assert not events(trace, op="log")
