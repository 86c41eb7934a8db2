"""How runs end: deadlock, stall, timeout, abandoned daemons, Ctrl-C, errors, the CLI.

Every run here must end with no actor thread left (the autouse fixture of conftest checks).
Where an order between actors matters, scenarios enforce it with events, not sleeps.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SCENARIOS, abba, check_shape, events, run_yaml, tracer_cli, unlined

from tracer import load_scenario, run_plan
from tracer.analyze import analyze, parse_trace_data

# --------------------------------------------------------------------------------------------
# helpers


def final_event(trace: dict[str, Any]) -> dict[str, Any]:
    return max(trace["events"], key=lambda e: e["seq"])


def unreturned_calls(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Calls with no later return of the same actor, op and target."""
    out = []
    pending: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for e in sorted(trace["events"], key=lambda e: e["seq"]):
        key = (e["actor"], e["op"], e.get("target"))
        if e.get("phase") == "call":
            pending.setdefault(key, []).append(e)
        elif e.get("phase") == "return" and pending.get(key):
            pending[key].pop()
    for calls in pending.values():
        out.extend(calls)
    return sorted(out, key=lambda e: e["seq"])


# ABBA, made certain by events: each takes its second lock only once the other holds its first
ABBA = abba("thread", "t1", "t2")


# --------------------------------------------------------------------------------------------
# deadlock


@pytest.mark.timeout(30)
def test_abba_deadlock_is_reported_as_a_cycle() -> None:
    # timeout: 60 in the scenario; pytest-timeout (30 s) fails the test if the run waited
    # for it instead of detecting the deadlock
    result, trace = run_yaml(ABBA)
    assert result.status == "deadlock"
    assert trace["outcome"]["status"] == "deadlock"
    last = final_event(trace)
    assert last["op"] == "deadlock"
    assert last["actor"] is None
    assert set(last["actors"]) == {"t1", "t2"}
    assert "t1 holds A (line 13) and waits for B (line 16)" in last["detail"]
    assert "t2 holds B (line 22) and waits for A (line 25)" in last["detail"]
    assert "t1 holds A (line 13) and waits for B (line 16)" in trace["outcome"]["detail"]
    blocked = [(e["actor"], e["op"], e["target"]) for e in unreturned_calls(trace)]
    assert sorted(blocked) == [("t1", "acquire", "B"), ("t2", "acquire", "A")]
    assert not events(trace, op="release")
    assert not events(trace, op="end")
    assert {a["name"]: a["status"] for a in trace["actors"]} == {"t1": "blocked",
                                                                 "t2": "blocked"}


def test_self_deadlock_on_a_plain_lock() -> None:
    result, trace = run_yaml("""
name: self
primitives:
  L: lock
actors:
  - name: t1
    kind: thread
    steps:
      - acquire: L
      - acquire: L
      - release: L
      - release: L
""")
    assert result.status == "deadlock"
    last = final_event(trace)
    assert last["op"] == "deadlock" and last["actor"] is None
    assert last["actors"] == ["t1"]
    assert "t1 holds L (line 9) and waits for L (line 10)" in last["detail"]
    assert [(e["op"], e["target"]) for e in unreturned_calls(trace)] == [("acquire", "L")]


def philosophers(n: int) -> str:
    forks = "\n".join(f"  fork{i}: lock\n  held{i}: event" for i in range(n))
    actors = "".join(f"""
  - name: P{i}
    kind: thread
    steps:
      - acquire: fork{i}
      - set: held{i}
      - wait: held{(i + 1) % n}
      - acquire: fork{(i + 1) % n}
      - log: eating
      - release: fork{(i + 1) % n}
      - release: fork{i}
""" for i in range(n))
    return f"name: philosophers\ntimeout: 60\nprimitives:\n{forks}\nactors:{actors}"


def test_dining_philosophers_deadlock_names_all_five() -> None:
    result, trace = run_yaml(philosophers(5))
    assert result.status == "deadlock"
    last = final_event(trace)
    assert last["op"] == "deadlock"
    assert set(last["actors"]) == {f"P{i}" for i in range(5)}
    for i in range(5):
        assert f"P{i} holds fork{i} and waits for fork{(i + 1) % 5}" in unlined(last["detail"])
    assert len(unreturned_calls(trace)) == 5
    assert not events(trace, op="log")


# --------------------------------------------------------------------------------------------
# stall


def test_stall_on_an_event_nobody_sets() -> None:
    result, trace = run_yaml("""
name: never_set
timeout: 60
primitives:
  起飞: event
actors:
  - name: waiter
    kind: thread
    steps:
      - wait: 起飞
  - name: bystander
    kind: thread
    steps:
      - log: "nothing to do with it"
""")
    assert result.status == "stall"
    last = final_event(trace)
    assert last["op"] == "stall" and last["actor"] is None
    assert last["actors"] == ["waiter"]
    assert "起飞" in last["detail"]
    assert "起飞" in trace["outcome"]["detail"]
    assert events(trace, actor="bystander", op="end", result="ok")
    assert [(e["actor"], e["op"]) for e in unreturned_calls(trace)] == [("waiter", "wait")]


def test_stall_on_a_queue_nobody_fills() -> None:
    result, trace = run_yaml("""
name: empty_queue
timeout: 60
primitives:
  馒头框: queue
actors:
  - name: producer
    kind: thread
    steps:
      - {put: 馒头框, item: 馒头1}
  - name: consumer
    kind: thread
    steps:
      - get: 馒头框
      - get: 馒头框
""")
    assert result.status == "stall"
    last = final_event(trace)
    assert last["op"] == "stall"
    assert last["actors"] == ["consumer"]
    assert "馒头框" in last["detail"]
    gets = events(trace, actor="consumer", op="get", phase="return")
    assert [g["item"] for g in gets] == ["馒头1"]
    assert len(events(trace, actor="consumer", op="get", phase="call")) == 2


def test_stall_on_a_lost_wakeup() -> None:
    # the notification certainly comes before the wait: the waiter takes C only after
    # `notified` is set, which the notifier does after its notify
    result, trace = run_yaml("""
name: lost_wakeup
timeout: 60
primitives:
  C: condition
  notified: event
actors:
  - name: notifier
    kind: thread
    steps:
      - with: C
        steps:
          - notify: C
      - set: notified
  - name: waiter
    kind: thread
    steps:
      - wait: notified
      - with: C
        steps:
          - wait: C
          - log: never woken
""")
    assert result.status == "stall"
    last = final_event(trace)
    assert last["op"] == "stall"
    assert last["actors"] == ["waiter"]
    assert "C" in last["detail"]
    (notify,) = events(trace, op="notify")
    (call,) = events(trace, actor="waiter", op="wait", target="C", phase="call")
    assert notify["seq"] < call["seq"]
    assert not events(trace, actor="waiter", op="wait", target="C", phase="return")


def test_stall_of_a_join_on_a_stalled_actor() -> None:
    result, trace = run_yaml("""
name: join_stalled
timeout: 60
primitives:
  E: event
actors:
  - name: main
    kind: thread
    steps:
      - start: worker
      - join: worker
      - log: never
  - name: worker
    kind: thread
    autostart: false
    steps:
      - wait: E
""")
    assert result.status == "stall"
    last = final_event(trace)
    assert last["op"] == "stall"
    assert set(last["actors"]) == {"main", "worker"}
    assert "E" in last["detail"]
    blocked = {(e["actor"], e["op"], e["target"]) for e in unreturned_calls(trace)}
    assert blocked == {("main", "join", "worker"), ("worker", "wait", "E")}


# --------------------------------------------------------------------------------------------
# no false deadlock / stall


def test_opposite_lock_order_with_timeouts_is_not_a_deadlock() -> None:
    result, trace = run_yaml("""
name: abba_timeouts
timeout: 60
primitives:
  A: lock
  B: lock
  a_held: event
  b_held: event
actors:
  - name: t1
    kind: thread
    steps:
      - acquire: A
      - set: a_held
      - wait: b_held
      - {acquire: B, timeout: 0.05}
      - release: A
  - name: t2
    kind: thread
    steps:
      - acquire: B
      - set: b_held
      - wait: a_held
      - {acquire: A, timeout: 0.05}
      - release: B
""")
    assert result.status == "ok"
    assert not [e for e in trace["events"] if e["op"] in ("deadlock", "stall", "timeout")]
    seconds = [e for e in events(trace, op="acquire", phase="return")
               if (e["actor"], e["target"]) in (("t1", "B"), ("t2", "A"))]
    assert len(seconds) == 2
    # each second lock is freed only after the other's attempt ends: both cannot succeed
    assert "timeout" in [e["result"] for e in seconds]
    assert all(e["result"] in ("ok", "timeout") for e in seconds)


def test_no_false_stall_at_a_barrier() -> None:
    text = """
name: barrier_pair
primitives:
  B: {type: barrier, parties: 2}
actors:
  - name: a
    kind: thread
    steps:
      - wait: B
  - name: b
    kind: thread
    steps:
      - wait: B
"""
    # regression: when the last party arrived and ended, the party still waking up was
    # reported as blocked forever (on most runs). A correct program ends ok on every run.
    for _ in range(20):
        result, _trace = run_yaml(text)
        assert result.status == "ok", result.detail


def test_no_false_stall_on_pipes() -> None:
    text = """
name: pipe_hello
primitives:
  P: {type: pipe, between: [a, b]}
actors:
  - name: a
    kind: thread
    steps:
      - {send: P, item: Hello}
      - recv: P
  - name: b
    kind: thread
    steps:
      - recv: P
      - {send: P, item: 你好}
"""
    # regression: an actor inside send/recv whose data had already moved was judged blocked
    # (false stall or even deadlock) when the other actor ended, on ~40% of runs
    for _ in range(30):
        result, trace = run_yaml(text)
        assert result.status == "ok", result.detail
        assert [e["item"] for e in events(trace, op="recv", phase="return")] == [
            "Hello", "你好"]


# --------------------------------------------------------------------------------------------
# timeout, daemons


def test_timeout_ends_a_long_run() -> None:
    result, trace = run_yaml("""
name: slow
timeout: 0.3
actors:
  - name: sleeper
    kind: thread
    steps:
      - sleep: 30
      - log: never
""")
    assert result.status == "timeout"
    last = final_event(trace)
    assert last["op"] == "timeout"
    assert last["actor"] is None
    assert "sleeper" in last["actors"]
    assert "sleeper" in last["detail"]
    assert [e["op"] for e in unreturned_calls(trace)] == ["sleep"]
    assert not events(trace, op="log")


def test_daemon_still_running_is_abandoned() -> None:
    result, trace = run_yaml("""
name: daemon
timeout: 60
actors:
  - name: main
    kind: thread
    steps:
      - start: d
      - log: main done
  - name: d
    kind: thread
    daemon: true
    autostart: false
    steps:
      - sleep: 30
      - log: never
""")
    assert result.status == "ok"
    assert trace["outcome"]["status"] == "ok"
    (end,) = events(trace, actor="d", op="end")
    assert end["result"] == "abandoned"
    assert all(e["seq"] < end["seq"] for e in events(trace, actor="d") if e is not end)
    assert events(trace, actor="main", op="end", result="ok")
    assert not events(trace, actor="d", op="log")
    status = {a["name"]: a.get("status") for a in trace["actors"]}
    assert status["d"] == "abandoned"


# --------------------------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_writes_the_trace_and_exits_130(tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text("""
name: long
timeout: 60
actors:
  - name: sleeper
    kind: thread
    steps:
      - log: going to sleep
      - sleep: 30
""", encoding="utf-8")
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONUTF8": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "run", str(scenario), "-o", str(out)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stderr is not None
        stderr = proc.stderr
        reader = threading.Thread(target=lambda: lines.put(stderr.readline()), daemon=True)
        reader.start()
        first = lines.get(timeout=20)
        assert first.startswith("running long")  # status: on stderr
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 130, (rest, err)
    assert "Traceback" not in err
    assert out.exists()
    trace = json.loads(out.read_text(encoding="utf-8"))
    assert trace["outcome"]["status"] == "interrupted"
    assert trace["format"] == "tracer-trace/1"
    assert [e["seq"] for e in trace["events"]] == list(range(len(trace["events"])))
    assert events(trace, actor="sleeper", op="log", detail="going to sleep")


# --------------------------------------------------------------------------------------------
# the command line


def test_cli_run_deadlock_and_show(tmp_path: Path) -> None:
    out = tmp_path / "X.json"
    proc = tracer_cli("run", str(SCENARIOS / "deadlock.yaml"), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "deadlock" in proc.stdout
    assert "t1 holds A and waits for B" in unlined(proc.stdout)
    assert "t2 holds B and waits for A" in unlined(proc.stdout)
    assert out.exists()
    trace = json.loads(out.read_text(encoding="utf-8"))
    assert trace["outcome"]["status"] == "deadlock"

    shown = tracer_cli("show", str(out), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    n = len(trace["events"])
    event_lines = [ln for ln in lines if ln.split()[:1] and ln.split()[0].isdigit()
                   and len(ln.split()) > 2]
    assert len(event_lines) == n
    assert [int(ln.split()[0]) for ln in event_lines] == list(range(n))
    assert "still blocked at the end:" in lines
    after = lines[lines.index("still blocked at the end:") + 1:]
    assert any(ln.strip().startswith("t1: acquire B") for ln in after)
    assert any(ln.strip().startswith("t2: acquire A") for ln in after)


def test_cli_run_clean_scenario(tmp_path: Path) -> None:
    out = tmp_path / "clean.json"
    proc = tracer_cli("run", str(ROOT / "scenarios" / "thread_join.yaml"), "-o", str(out),
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trace = json.loads(out.read_text(encoding="utf-8"))
    assert trace["outcome"]["status"] == "ok"
    shown = tracer_cli("show", str(out), cwd=tmp_path)
    assert shown.returncode == 0
    assert "still blocked" not in shown.stdout


# --------------------------------------------------------------------------------------------
# the bundled scenarios, in-process


# Bundled scenarios that fail on some runs only, because of a tracer bug that a test shows
# deterministically elsewhere: not strict (the run is sometimes right), but visible.
def _bundled() -> list[Any]:
    out = []
    for p in sorted(SCENARIOS.glob("*.yaml")):
        out.append(pytest.param(p, id=p.stem))
    return out


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", _bundled())
def test_bundled_scenario_runs_as_expected(path: Path) -> None:
    plan = load_scenario(path)
    assert plan.scenario.name == path.stem
    assert plan.scenario.description
    expect = plan.scenario.expect
    assert expect is not None, "every bundled scenario declares expect"
    result = run_plan(plan)
    trace = json.loads(result.to_json())
    assert trace["outcome"]["status"] == result.status
    check_shape(trace)
    assert multiprocessing.active_children() == []
    if "deadlock" in expect:
        assert result.status == "deadlock", result.detail
    elif "stall" in expect:
        assert result.status == "stall", result.detail
    elif "misuse" in expect and result.status == "error":
        # a misuse the real primitive refuses ends its actor (a latch counted below zero):
        # the analysis says so in the misuse, and reports no error besides it
        assert "error" not in expect
    else:
        # [] is clean; races and invariants are findings of the analysis, not outcomes
        assert result.status == "ok", result.detail
    # `expect` in full: the analysis of the trace finds exactly the expected kinds
    report = analyze(parse_trace_data(result.to_json(), str(path)))
    assert sorted(set(report.kinds)) == sorted(set(expect)), [f.message for f in report.findings]


def test_scenarios_folder_is_not_empty() -> None:
    assert len(list(SCENARIOS.glob("*.yaml"))) >= 10


def test_python_api_leaves_no_actor_thread_after_a_deadlock() -> None:
    from tracer import load_scenario_text

    result = run_plan(load_scenario_text(ABBA, "<abba>"))
    assert result.status == "deadlock"
    left = [t.name for t in threading.enumerate() if t.name.startswith("tracer-actor:")]
    assert left == []
