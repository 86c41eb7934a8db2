"""Recorded semantics of each primitive type, read from the trace.

Every assertion is a property of the trace (seq order, counts, items, values, results) that
holds whatever the interleaving; scenarios order actors with events where an order matters,
never with sleeps.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from conftest import by_seq, end_of, events, max_holders, run_yaml

# --------------------------------------------------------------------------------------------
# helpers





def seq_of(e: dict[str, Any]) -> int:
    return int(e["seq"])


# --------------------------------------------------------------------------------------------
# lock


LOCKED_COUNTER = """
name: locked_counter
shared:
  counter: 0
primitives:
  L: lock
actors:
  - name: w
    kind: thread
    count: 3
    steps:
      - repeat: 50
        steps:
          - with: L
            steps:
              - add: {var: counter, value: 2}
"""


def test_lock_mutual_exclusion_and_no_lost_update() -> None:
    result, trace = run_yaml(LOCKED_COUNTER)
    assert result.status == "ok"
    assert max_holders(trace, "L") == 1
    assert len(events(trace, op="acquire", phase="return", result="ok")) == 150
    assert len(events(trace, op="release", target="L")) == 150
    assert trace["final"]["counter"] == 3 * 50 * 2
    for i in range(3):
        name = f"w[{i}]"
        accesses = [e for e in by_seq(trace)
                    if e["actor"] == name and e["op"] in ("read", "write")]
        assert len(accesses) == 100
        for read, write in zip(accesses[::2], accesses[1::2], strict=True):
            assert (read["op"], write["op"]) == ("read", "write")
            assert write["value"] == read["value"] + 2
    # under the lock, each read sees the previous write of whoever wrote last
    last = 0
    for e in by_seq(trace):
        if e["op"] == "read":
            assert e["value"] == last
        elif e["op"] == "write":
            last = e["value"]
    assert last == 300


# --------------------------------------------------------------------------------------------
# rlock


def test_rlock_reentry_by_its_holder() -> None:
    result, trace = run_yaml("""
name: rlock
primitives:
  R: rlock
actors:
  - name: t1
    kind: thread
    steps:
      - acquire: R
      - acquire: R
      - acquire: R
      - log: inside three times
      - release: R
      - release: R
      - release: R
  - name: t2
    kind: thread
    steps:
      - with: R
        steps:
          - log: t2 inside
""")
    assert result.status == "ok"
    assert end_of(trace, "t1")["result"] == "ok"
    assert end_of(trace, "t2")["result"] == "ok"
    # the re-entry count is visible: three acquire returns by t1 before its first release
    t1 = [e for e in by_seq(trace) if e["actor"] == "t1" and e.get("target") == "R"]
    first_release = next(i for i, e in enumerate(t1) if e["op"] == "release")
    oks = [e for e in t1[:first_release] if e.get("phase") == "return"]
    assert [e["result"] for e in oks] == ["ok", "ok", "ok"]
    assert sum(e["op"] == "release" for e in t1) == 3
    # t2 is never inside while t1 holds R at any depth
    depth = {"t1": 0, "t2": 0}
    for e in by_seq(trace):
        if e.get("target") != "R":
            continue
        if e["op"] == "acquire" and e.get("result") == "ok":
            depth[e["actor"]] += 1
        elif e["op"] == "release":
            depth[e["actor"]] -= 1
        assert not (depth["t1"] and depth["t2"])


# --------------------------------------------------------------------------------------------
# semaphores


def test_semaphore_never_more_holders_than_its_value() -> None:
    result, trace = run_yaml("""
name: sem
primitives:
  S: {type: semaphore, value: 2}
actors:
  - name: r
    kind: thread
    count: 5
    steps:
      - repeat: 20
        steps:
          - acquire: S
          - log: in
          - release: S
""")
    assert result.status == "ok"
    assert len(events(trace, op="acquire", phase="return", result="ok")) == 100
    assert max_holders(trace, "S") <= 2


def test_semaphore_third_acquirer_blocks_forever() -> None:
    result, trace = run_yaml("""
name: sem_stall
primitives:
  S: {type: semaphore, value: 2}
actors:
  - name: a
    kind: thread
    count: 3
    steps:
      - acquire: S
      - log: got it
""")
    assert result.status in ("stall", "deadlock")
    oks = events(trace, op="acquire", phase="return", result="ok")
    assert len(oks) == 2
    assert len(events(trace, op="acquire", phase="call")) == 3
    assert len(events(trace, op="acquire", phase="return")) == 2
    blocked = {e["actor"] for e in events(trace, op="acquire", phase="call")} - {
        e["actor"] for e in oks}
    assert len(blocked) == 1
    last = by_seq(trace)[-1]
    assert last["op"] == result.status
    assert blocked <= set(last["actors"])


def test_bounded_semaphore_released_too_often() -> None:
    result, trace = run_yaml("""
name: bounded
primitives:
  S: {type: bounded_semaphore, value: 1}
  E: event
actors:
  - name: bad
    kind: thread
    steps:
      - acquire: S
      - release: S
      - set: E
      - release: S
      - log: never logged
  - name: good
    kind: thread
    steps:
      - wait: E
      - with: S
        steps:
          - log: good inside
""")
    assert result.status == "error"
    end = end_of(trace, "bad")
    assert end["result"] == "error"
    assert "S" in end["error"]
    assert "bounded semaphore" in end["error"]
    releases = events(trace, actor="bad", op="release", target="S")
    assert len(releases) == 2
    assert "error" not in releases[0]
    assert "bounded semaphore" in releases[1]["error"]
    assert not events(trace, actor="bad", op="log")
    assert end_of(trace, "good")["result"] == "ok"
    assert events(trace, actor="good", op="log", detail="good inside")
    assert "bad" in result.detail


def test_release_of_unlocked_lock_is_an_error() -> None:
    result, trace = run_yaml("""
name: bad_release
shared:
  x: 0
primitives:
  L: lock
actors:
  - name: intruder
    kind: thread
    steps:
      - release: L
      - log: never logged
  - name: worker
    kind: thread
    steps:
      - repeat: 3
        steps:
          - with: L
            steps:
              - add: {var: x, value: 1}
""")
    assert result.status == "error"
    rel = events(trace, actor="intruder", op="release", target="L")
    assert len(rel) == 1
    assert rel[0]["error"]
    assert "L" in rel[0]["error"]
    end = end_of(trace, "intruder")
    assert end["result"] == "error"
    assert end["error"] == rel[0]["error"]
    assert not events(trace, actor="intruder", op="log")
    assert end_of(trace, "worker")["result"] == "ok"
    assert trace["final"]["x"] == 3


# --------------------------------------------------------------------------------------------
# event


def test_event_waiters_return_after_the_set() -> None:
    result, trace = run_yaml("""
name: ev
primitives:
  E: event
actors:
  - name: waiter
    kind: thread
    count: 3
    steps:
      - wait: E
      - log: woken
  - name: setter
    kind: thread
    steps:
      - log: setting
      - set: E
""")
    assert result.status == "ok"
    (s,) = events(trace, op="set", target="E")
    returns = events(trace, op="wait", target="E", phase="return")
    assert len(returns) == 3
    assert all(r["result"] == "ok" and r["seq"] > s["seq"] for r in returns)


def test_event_wait_timeout_and_clear() -> None:
    result, trace = run_yaml("""
name: ev_timeout
primitives:
  Never: event
  E: event
actors:
  - name: a
    kind: thread
    steps:
      - {wait: Never, timeout: 0.02}
      - set: E
      - {wait: E, timeout: 5}
      - clear: E
      - {wait: E, timeout: 0.02}
""")
    assert result.status == "ok"
    never = events(trace, target="Never", phase="return")
    assert [e["result"] for e in never] == ["timeout"]
    waits = events(trace, op="wait", target="E", phase="return")
    assert [e["result"] for e in waits] == ["ok", "timeout"]
    (clear,) = events(trace, op="clear", target="E")
    assert waits[0]["seq"] < clear["seq"] < waits[1]["seq"]


# --------------------------------------------------------------------------------------------
# condition


def test_condition_notify_wakes_a_waiter() -> None:
    # the waiter sets E while it holds C, so the notifier can only take C once the waiter
    # is inside wait (which releases C): the notification cannot be lost
    result, trace = run_yaml("""
name: cond
primitives:
  C: condition
  E: event
actors:
  - name: waiter
    kind: thread
    steps:
      - with: C
        steps:
          - set: E
          - wait: C
          - log: woken
  - name: notifier
    kind: thread
    steps:
      - wait: E
      - with: C
        steps:
          - notify: C
""")
    assert result.status == "ok"
    (n,) = events(trace, op="notify", target="C")
    (ret,) = events(trace, actor="waiter", op="wait", target="C", phase="return")
    assert ret["result"] == "ok"
    assert ret["seq"] > n["seq"]
    assert max_holders(trace, "C") == 1


def test_condition_notify_all_wakes_every_waiter() -> None:
    result, trace = run_yaml("""
name: cond_all
shared:
  arrived: 0
primitives:
  C: condition
  All: event
actors:
  - name: waiter
    kind: thread
    count: 3
    steps:
      - with: C
        steps:
          - add: {var: arrived, value: 1}
          - if: {var: arrived, op: "==", value: 3}
            then:
              - set: All
          - wait: C
          - log: woken
  - name: notifier
    kind: thread
    steps:
      - wait: All
      - with: C
        steps:
          - notify_all: C
""")
    assert result.status == "ok"
    (n,) = events(trace, op="notify_all", target="C")
    returns = events(trace, op="wait", target="C", phase="return")
    assert len(returns) == 3
    assert {r["actor"] for r in returns} == {"waiter[0]", "waiter[1]", "waiter[2]"}
    assert all(r["result"] == "ok" and r["seq"] > n["seq"] for r in returns)
    assert max_holders(trace, "C") == 1


def test_condition_notify_after_holding_the_lock_a_while_still_wakes_the_waiter() -> None:
    # correct code: the waiter is certainly inside wait (it set E while holding C), and the
    # notifier notifies while holding C; only how long it holds C differs from the test above
    result, trace = run_yaml("""
name: cond_slow_notifier
primitives:
  C: condition
  E: event
actors:
  - name: waiter
    kind: thread
    steps:
      - with: C
        steps:
          - set: E
          - wait: C
          - log: woken
  - name: notifier
    kind: thread
    steps:
      - wait: E
      - with: C
        steps:
          - sleep: 0.05
          - notify: C
""")
    assert result.status == "ok", result.detail
    (n,) = events(trace, op="notify", target="C")
    (ret,) = events(trace, actor="waiter", op="wait", target="C", phase="return")
    assert ret["result"] == "ok" and ret["seq"] > n["seq"]


def test_condition_wait_without_the_lock_is_an_error() -> None:
    result, trace = run_yaml("""
name: cond_nolock
primitives:
  C: condition
actors:
  - name: a
    kind: thread
    steps:
      - wait: C
      - log: never logged
  - name: b
    kind: thread
    steps:
      - log: b runs
""")
    assert result.status == "error"
    (ret,) = events(trace, actor="a", op="wait", target="C", phase="return")
    assert ret["result"] == "error"
    assert ret["error"]
    assert end_of(trace, "a")["result"] == "error"
    assert not events(trace, actor="a", op="log")
    assert end_of(trace, "b")["result"] == "ok"


def test_condition_built_on_a_named_lock() -> None:
    result, trace = run_yaml("""
name: cond_named
primitives:
  L: lock
  C: {type: condition, lock: L}
  E: event
actors:
  - name: waiter
    kind: thread
    steps:
      - acquire: L
      - set: E
      - wait: C
      - release: L
  - name: notifier
    kind: thread
    steps:
      - wait: E
      - with: C
        steps:
          - notify: C
  - name: other
    kind: thread
    steps:
      - wait: E
      - with: L
        steps:
          - log: other inside
""")
    assert result.status == "ok"
    (n,) = events(trace, op="notify", target="C")
    (ret,) = events(trace, actor="waiter", op="wait", target="C", phase="return")
    assert ret["result"] == "ok" and ret["seq"] > n["seq"]
    # L and C are one lock: never two holders of either at once
    assert max_holders(trace, "L", "C") == 1


def test_condition_on_named_lock_wait_while_another_holds_it() -> None:
    # a plain lock cannot tell who holds it: waiting on C while *another* actor holds L
    # must still be refused, not release that actor's lock
    result, trace = run_yaml("""
name: cond_named_intruder
primitives:
  L: lock
  C: {type: condition, lock: L}
  E1: event
actors:
  - name: intruder
    kind: thread
    steps:
      - wait: E1
      - {wait: C, timeout: 0.05}
      - log: never logged
  - name: holder
    kind: thread
    steps:
      - acquire: L
      - set: E1
      - join: intruder
      - release: L
""")
    assert result.status == "error"
    (ret,) = events(trace, actor="intruder", op="wait", target="C", phase="return")
    assert ret["result"] == "error"
    assert "L" in ret["error"]
    assert end_of(trace, "intruder")["result"] == "error"
    assert not events(trace, actor="intruder", op="log")
    assert end_of(trace, "holder")["result"] == "ok"
    (rel,) = events(trace, actor="holder", op="release", target="L")
    assert "error" not in rel


# --------------------------------------------------------------------------------------------
# barrier


def test_barrier_releases_nobody_before_all_arrive() -> None:
    result, trace = run_yaml("""
name: bar
primitives:
  B: {type: barrier, parties: 3}
actors:
  - name: w
    kind: thread
    count: 3
    steps:
      - repeat: 4
        steps:
          - log: working
          - wait: B
""")
    assert result.status == "ok"
    rounds_calls: dict[int, list[int]] = defaultdict(list)
    rounds_returns: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i in range(3):
        name = f"w[{i}]"
        calls = events(trace, actor=name, op="wait", target="B", phase="call")
        rets = events(trace, actor=name, op="wait", target="B", phase="return")
        assert len(calls) == len(rets) == 4
        for k, (c, r) in enumerate(zip(calls, rets, strict=True)):
            rounds_calls[k].append(c["seq"])
            rounds_returns[k].append(r)
    for k in range(4):
        assert len(rounds_calls[k]) == 3
        last_call = max(rounds_calls[k])
        assert all(r["result"] == "ok" and r["seq"] > last_call for r in rounds_returns[k])


def test_barrier_with_too_few_parties_times_out_without_hanging() -> None:
    result, trace = run_yaml("""
name: bar_timeout
timeout: 20
primitives:
  B: {type: barrier, parties: 3}
  E: event
actors:
  - name: early
    kind: thread
    steps:
      - {wait: B, timeout: 0.05}
      - set: E
  - name: late
    kind: thread
    steps:
      - wait: E
      - wait: B
      - log: after the broken barrier
""")
    (early,) = events(trace, actor="early", op="wait", target="B", phase="return")
    assert early["result"] in ("timeout", "broken")
    (late,) = events(trace, actor="late", op="wait", target="B", phase="return")
    assert late["result"] == "broken"
    assert result.status in ("ok", "error")
    assert end_of(trace, "early")["result"] == "ok"


# --------------------------------------------------------------------------------------------
# queue


def test_queue_full_blocks_the_ninth_put() -> None:
    result, trace = run_yaml("""
name: q_full
primitives:
  Q: {type: queue, maxsize: 8}
actors:
  - name: producer
    kind: thread
    steps:
      - repeat: 9
        steps:
          - put: Q
""")
    assert result.status == "stall"
    assert len(events(trace, op="put", phase="call")) == 9
    returns = events(trace, op="put", phase="return")
    assert len(returns) == 8
    assert all(r["result"] == "ok" for r in returns)
    last_call = events(trace, op="put", phase="call")[-1]
    assert last_call["seq"] > max(r["seq"] for r in returns)
    final = by_seq(trace)[-1]
    assert final["op"] == "stall" and final["actor"] is None
    assert "producer" in final["actors"]
    assert "Q" in final["detail"]


def test_queue_is_fifo_and_bare_put_items_are_unique() -> None:
    result, trace = run_yaml("""
name: q_fifo
primitives:
  Q: {type: queue, maxsize: 8}
actors:
  - name: producer
    kind: thread
    steps:
      - repeat: 20
        steps:
          - put: Q
  - name: consumer
    kind: thread
    steps:
      - repeat: 20
        steps:
          - get: Q
""")
    assert result.status == "ok"
    put_items = [e["item"] for e in events(trace, op="put", phase="call")]
    got_items = [e["item"] for e in events(trace, op="get", phase="return", result="ok")]
    assert len(put_items) == 20
    assert len(set(put_items)) == 20
    assert got_items == put_items


def test_queue_explicit_items_and_two_producers_get_distinct_auto_items() -> None:
    result, trace = run_yaml("""
name: q_items
primitives:
  馒头框: queue
actors:
  - name: p
    kind: thread
    count: 2
    steps:
      - put: 馒头框
      - put: 馒头框
      - {put: 馒头框, item: {name: "馒头1", n: [1, 2]}}
  - name: c
    kind: thread
    steps:
      - repeat: 6
        steps:
          - get: 馒头框
""")
    assert result.status == "ok"
    auto = [e["item"] for e in events(trace, op="put", phase="call")
            if not isinstance(e["item"], dict)]
    assert len(auto) == 4
    assert len(set(auto)) == 4
    got = [e["item"] for e in events(trace, op="get", phase="return")]
    assert sorted(map(str, got)) == sorted(
        map(str, [e["item"] for e in events(trace, op="put", phase="call")]))
    assert got.count({"name": "馒头1", "n": [1, 2]}) == 2


def test_queue_nonblocking_put_fails_and_get_times_out() -> None:
    result, trace = run_yaml("""
name: q_nonblocking
primitives:
  Q: {type: queue, maxsize: 1}
  Empty: queue
actors:
  - name: a
    kind: thread
    steps:
      - {put: Q, item: first}
      - {put: Q, item: second, blocking: false}
      - {get: Empty, timeout: 0.02}
      - {get: Empty, blocking: false}
      - get: Q
""")
    assert result.status == "ok"
    puts = events(trace, op="put", phase="return")
    assert [e["result"] for e in puts] == ["ok", "fail"]
    empties = events(trace, op="get", target="Empty", phase="return")
    assert [e["result"] for e in empties] == ["timeout", "fail"]
    assert all("item" not in e for e in empties)
    (got,) = events(trace, op="get", target="Q", phase="return")
    assert got["result"] == "ok" and got["item"] == "first"


# --------------------------------------------------------------------------------------------
# pipe


def test_pipe_duplex_both_ways() -> None:
    result, trace = run_yaml("""
name: pipe
primitives:
  P: {type: pipe, between: [a, b]}
actors:
  - name: a
    kind: thread
    steps:
      - {send: P, item: Hello}
      - {send: P, item: [1, 2, 3]}
      - recv: P
  - name: b
    kind: thread
    steps:
      - recv: P
      - recv: P
      - {send: P, item: 你好}
""")
    assert result.status == "ok"
    assert [e["item"] for e in events(trace, actor="b", op="recv", phase="return")] == [
        "Hello", [1, 2, 3]]
    assert [e["item"] for e in events(trace, actor="a", op="recv", phase="return")] == ["你好"]
    (sent,) = events(trace, actor="b", op="send", phase="call")
    (got,) = events(trace, actor="a", op="recv", phase="return")
    assert sent["seq"] < got["seq"]


def test_pipe_one_way() -> None:
    result, trace = run_yaml("""
name: pipe_oneway
primitives:
  P: {type: pipe, between: [src, dst], duplex: false}
actors:
  - name: src
    kind: thread
    steps:
      - repeat: 5
        steps:
          - send: P
  - name: dst
    kind: thread
    steps:
      - repeat: 5
        steps:
          - recv: P
""")
    assert result.status == "ok"
    sent = [e["item"] for e in events(trace, actor="src", op="send", phase="call")]
    got = [e["item"] for e in events(trace, actor="dst", op="recv", phase="return")]
    assert got == sent
    assert len(set(sent)) == 5


# --------------------------------------------------------------------------------------------
# shared variables and control steps


def test_shared_variable_steps_record_values() -> None:
    result, trace = run_yaml("""
name: vars
shared:
  x: 1
  names: []
actors:
  - name: a
    kind: thread
    steps:
      - read: x
      - write: {var: x, value: 20}
      - add: {var: x, value: -5}
      - read: x
      - append: {var: names, item: 账户}
      - append: {var: names, item: {k: 1}}
      - read: names
""")
    assert result.status == "ok"
    reads = [e["value"] for e in events(trace, op="read", target="x")]
    assert reads == [1, 20, 15]
    writes = [e["value"] for e in events(trace, op="write", target="x")]
    assert writes == [20, 15]
    assert [e["item"] for e in events(trace, op="append")] == ["账户", {"k": 1}]
    (names,) = events(trace, op="read", target="names")
    assert names["value"] == ["账户", {"k": 1}]
    assert trace["final"] == {"x": 15, "names": ["账户", {"k": 1}]}


def test_if_reads_and_branches() -> None:
    result, trace = run_yaml("""
name: branches
shared:
  balance: 100
  path: []
actors:
  - name: a
    kind: thread
    steps:
      - if: {var: balance, op: ">=", value: 80}
        then:
          - append: {var: path, item: then1}
          - add: {var: balance, value: -80}
        else:
          - append: {var: path, item: else1}
      - if: {var: balance, op: ">=", value: 80}
        then:
          - append: {var: path, item: then2}
        else:
          - append: {var: path, item: else2}
""")
    assert result.status == "ok"
    assert trace["final"]["path"] == ["then1", "else2"]
    assert trace["final"]["balance"] == 20
    reads = [e["value"] for e in events(trace, op="read", target="balance")]
    assert reads == [100, 100, 20]  # if, add's read, if


def test_return_inside_with_releases_the_lock() -> None:
    result, trace = run_yaml("""
name: return_with
primitives:
  L: lock
  E: event
actors:
  - name: first
    kind: thread
    steps:
      - with: L
        steps:
          - set: E
          - return: true
          - log: never logged
      - log: never logged either
  - name: second
    kind: thread
    steps:
      - wait: E
      - with: L
        steps:
          - log: second inside
""")
    assert result.status == "ok"
    assert not events(trace, actor="first", op="log")
    assert end_of(trace, "first")["result"] == "ok"
    assert len(events(trace, actor="first", op="release", target="L")) == 1
    assert events(trace, actor="second", op="log", detail="second inside")
    assert end_of(trace, "second")["result"] == "ok"
    assert max_holders(trace, "L") == 1


def test_fail_ends_the_actor_with_its_message_and_others_continue() -> None:
    result, trace = run_yaml("""
name: failing
primitives:
  L: lock
  E: event
actors:
  - name: bad
    kind: thread
    steps:
      - with: L
        steps:
          - set: E
          - fail: "余额不足 boom"
          - log: never logged
  - name: good
    kind: thread
    steps:
      - wait: E
      - with: L
        steps:
          - log: "good still runs"
""")
    assert result.status == "error"
    end = end_of(trace, "bad")
    assert end["result"] == "error"
    assert "余额不足 boom" in end["error"]
    assert not events(trace, actor="bad", op="log")
    # the failing `with` released L on the way out, so good could take it
    assert len(events(trace, actor="bad", op="release", target="L")) == 1
    assert events(trace, actor="good", op="log", detail="good still runs")
    assert end_of(trace, "good")["result"] == "ok"
    assert "余额不足 boom" in result.detail


def test_log_text_in_detail() -> None:
    result, trace = run_yaml("""
name: logs
actors:
  - name: a
    kind: thread
    steps:
      - log: "主线程,start"
      - log: "line two"
""")
    assert result.status == "ok"
    assert [e["detail"] for e in events(trace, op="log")] == ["主线程,start", "line two"]
    assert all(e["actor"] == "a" for e in events(trace, op="log"))


# --------------------------------------------------------------------------------------------
# start / join


def test_autostart_false_actor_starts_at_its_spawn_and_join_follows_its_end() -> None:
    result, trace = run_yaml("""
name: start_join
actors:
  - name: main
    kind: thread
    steps:
      - log: before
      - start: child
      - join: child
      - log: after
  - name: child
    kind: thread
    autostart: false
    steps:
      - log: child working
      - sleep: 0.01
""")
    assert result.status == "ok"
    (spawn,) = events(trace, op="spawn")
    assert spawn["actor"] == "main" and spawn["target"] == "child"
    child = events(trace, actor="child")
    assert child and min(e["seq"] for e in child) > spawn["seq"]
    assert child[0]["op"] == "start"
    (ret,) = events(trace, actor="main", op="join", target="child", phase="return")
    assert ret["result"] == "ok"
    assert ret["seq"] > end_of(trace, "child")["seq"]
    (after,) = events(trace, actor="main", op="log", detail="after")
    assert after["seq"] > end_of(trace, "child")["seq"]


def test_join_on_counted_actor_joins_every_copy() -> None:
    result, trace = run_yaml("""
name: join_count
actors:
  - name: main
    kind: thread
    steps:
      - start: w
      - join: w
      - log: all joined
  - name: w
    kind: thread
    count: 3
    autostart: false
    steps:
      - sleep: 0.01
      - log: done
""")
    assert result.status == "ok"
    assert {e["target"] for e in events(trace, op="spawn")} == {"w[0]", "w[1]", "w[2]"}
    spawns = events(trace, op="spawn")
    for i in range(3):
        name = f"w[{i}]"
        (sp,) = [e for e in spawns if e["target"] == name]
        assert min(e["seq"] for e in events(trace, actor=name)) > sp["seq"]
        (ret,) = events(trace, actor="main", op="join", target=name, phase="return")
        assert ret["result"] == "ok"
        assert ret["seq"] > end_of(trace, name)["seq"]
    (done,) = events(trace, actor="main", op="log", detail="all joined")
    assert done["seq"] > max(end_of(trace, f"w[{i}]")["seq"] for i in range(3))


def test_join_of_an_autostart_actor_declared_later() -> None:
    result, trace = run_yaml("""
name: join_autostart
actors:
  - name: main
    kind: thread
    steps:
      - join: worker
      - log: joined
  - name: worker
    kind: thread
    steps:
      - log: working
""")
    assert result.status == "ok", result.detail
    (ret,) = events(trace, actor="main", op="join", target="worker", phase="return")
    assert ret["result"] == "ok"
    assert ret["seq"] > end_of(trace, "worker")["seq"]


def test_join_of_an_autostart_actor_declared_earlier() -> None:
    result, trace = run_yaml("""
name: join_autostart_earlier
actors:
  - name: worker
    kind: thread
    steps:
      - sleep: 0.01
      - log: working
  - name: main
    kind: thread
    steps:
      - join: worker
      - log: joined
""")
    assert result.status == "ok", result.detail
    (ret,) = events(trace, actor="main", op="join", target="worker", phase="return")
    assert ret["result"] == "ok"
    assert ret["seq"] > end_of(trace, "worker")["seq"]


def test_join_of_never_started_actor_is_an_error() -> None:
    result, trace = run_yaml("""
name: join_unstarted
actors:
  - name: main
    kind: thread
    steps:
      - join: sleeper
      - log: never logged
  - name: sleeper
    kind: thread
    autostart: false
    steps:
      - log: never runs
""")
    assert result.status == "error"
    (ret,) = events(trace, actor="main", op="join", phase="return")
    assert ret["result"] == "error"
    assert "sleeper" in ret["error"]
    assert end_of(trace, "main")["result"] == "error"
    assert not events(trace, actor="sleeper")
    assert not events(trace, op="log")


# --------------------------------------------------------------------------------------------
# pool


def test_pool_runs_at_most_workers_tasks_at_once() -> None:
    result, trace = run_yaml("""
name: pool
primitives:
  P: {type: pool, workers: 2, of: thread}
actors:
  - name: task
    kind: thread
    pool: P
    count: 4
    steps:
      - log: task running
      - sleep: 0.01
""")
    assert result.status == "ok"
    running = 0
    top = 0
    for e in by_seq(trace):
        if e["op"] == "start" and e["actor"]:
            running += 1
            top = max(top, running)
        elif e["op"] == "end":
            running -= 1
    assert top <= 2
    names = [f"task[{i}]" for i in range(4)]
    assert all(end_of(trace, n)["result"] == "ok" for n in names)
    assert len(events(trace, op="start")) == 4


# --------------------------------------------------------------------------------------------
# trace format


UNICODE = """
name: 馒头
description: Unicode names survive
shared:
  账户: 0
primitives:
  馒头框: {type: queue, maxsize: 8}
  锁: lock
actors:
  - name: 生产者
    kind: thread
    steps:
      - {put: 馒头框, item: "馒头1"}
      - with: 锁
        steps:
          - add: {var: 账户, value: 1}
  - name: 消费者
    kind: thread
    steps:
      - get: 馒头框
      - {sleep: 0.001}
      - log: "消费馒头"
"""


def test_trace_format_invariants(tmp_path: Any) -> None:
    result, trace = run_yaml(UNICODE)
    assert result.status == "ok"
    assert trace["format"] == "tracer-trace/1"
    assert trace["meta"]["mode"] == "run"
    assert trace["scenario"]["name"] == "馒头"
    assert trace["scenario"]["primitives"]["馒头框"]["maxsize"] == 8
    evs = trace["events"]
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    ts = [e["ts"] for e in evs]
    assert all(a <= b for a, b in itertools.pairwise(ts))
    assert all(t >= 0 for t in ts)
    for e in evs:
        assert "actor" in e and "op" in e
    # call/return pairing, per actor
    open_calls: dict[tuple[Any, ...], int] = defaultdict(int)
    for e in evs:
        key = (e["actor"], e["op"], e.get("target"))
        if e.get("phase") == "call":
            open_calls[key] += 1
        elif e.get("phase") == "return":
            assert open_calls[key] > 0, f"return without a call: {e}"
            open_calls[key] -= 1
            assert "result" in e
    assert not any(open_calls.values())
    names = {a["name"] for a in trace["actors"]}
    assert names == {"生产者", "消费者"}
    for a in trace["actors"]:
        assert isinstance(a["pid"], int) and a["pid"] > 0
        assert isinstance(a["tid"], int) and a["tid"] > 0
        assert a["kind"] == "thread"
    assert trace["outcome"]["status"] == "ok"
    # the file is UTF-8 with the names as they are, not \u-escaped
    out = tmp_path / "t.json"
    text = result.write(out)
    raw = out.read_text(encoding="utf-8")
    assert raw == text
    for word in ("馒头框", "账户", "生产者", "消费馒头", "馒头1", "锁"):
        assert word in raw
    assert "\\u" not in raw
    import json

    assert json.loads(raw) == trace


def test_every_event_of_an_erroring_and_blocking_run_is_paired() -> None:
    # a stalled run: the one call without a return is the blocked one
    result, trace = run_yaml("""
name: pairing
primitives:
  E: event
  Q: queue
actors:
  - name: a
    kind: thread
    steps:
      - {put: Q, item: 1}
      - get: Q
      - wait: E
""")
    assert result.status == "stall"
    evs = trace["events"]
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    calls = events(trace, phase="call")
    returns = events(trace, phase="return")
    assert len(calls) == len(returns) + 1
    unreturned = [c for c in calls if not any(
        r["actor"] == c["actor"] and r["op"] == c["op"] and r.get("target") == c.get("target")
        and r["seq"] > c["seq"] for r in returns)]
    assert [(c["op"], c["target"]) for c in unreturned] == [("wait", "E")]
