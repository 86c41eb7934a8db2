"""Every run ends, on time, with its trace (issue 10, item 4): a waiter whose lock is held
by an ended actor, SIGTERM/SIGHUP, the event cap, process start-up under the timeout, killed
children, and clean messages for misuse of process and coroutine primitives.

No sleep synchronises anything here: orders are forced with events, and a signal is sent
only once the CLI has printed its 'running …' line.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import events, run_yaml, statuses, tracer_cli

from tracer import load_scenario_text

# Two consumers that both end while holding C (each fails after its wait): the one that takes
# C back second can never have it. c1 waits first; p notifies once (c1, FIFO), c2 leaves its
# wait by its timeout; whichever of them gets C, the other is stuck taking it back.
MONITOR = """
name: monitor_{kind}
timeout: 60
primitives:
  C: condition
  w1: event
  w2: event
actors:
  - name: c1
    kind: {kind}
    steps:
      - acquire: C
      - set: w1
      - wait: C
      - fail: "c1 broke while holding C"
  - name: c2
    kind: {kind}
    steps:
      - wait: w1
      - acquire: C
      - set: w2
      - {{wait: C, timeout: 0.2}}
      - fail: "c2 broke while holding C"
  - name: p
    kind: {kind}
    steps:
      - wait: w2
      - acquire: C
      - notify: C
      - release: C
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_waiter_on_a_lock_held_by_an_ended_actor_ends_the_run(kind: str) -> None:
    # (not process actors here: multiprocessing's notify wakes whichever sleeper takes its
    # semaphore first, so c2 may take c1's wakeup, and the watchdog cannot tell a waiter
    # left without one from a woken one: that run ends at its timeout)
    # before: the waiter blocked for good inside Condition.wait taking C back; the run went
    # to its timeout (60 s) and could not stop the thread. Now it is seen waiting for C,
    # held by an actor that ended, and stopped.
    result, trace = run_yaml(MONITOR.format(kind=kind))
    assert result.status == "stall", result.detail
    assert "held by" in result.detail and "ended without releasing it" in result.detail
    st = statuses(trace)
    assert sorted(st[n] for n in ("c1", "c2")) == ["blocked", "error"]
    stuck = next(n for n in ("c1", "c2") if st[n] == "blocked")
    assert not events(trace, actor=stuck, op="end")
    assert result.duration < 30


@pytest.mark.timeout(40)
@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_exploring_the_monitor_puzzle_is_fast(kind: str, tmp_path: Path) -> None:
    # before: each schedule where a waiter was stuck taking C back cost ~6 s (the teardown's
    # grace) and leaked its thread; 20 schedules took minutes
    scenario = tmp_path / "monitor.yaml"
    scenario.write_text(MONITOR.format(kind=kind), encoding="utf-8")
    t0 = time.monotonic()
    proc = tracer_cli("explore", str(scenario), "--runs", "20", "--traces",
                      str(tmp_path / "traces"), cwd=tmp_path, timeout=35)
    assert proc.returncode == 1, proc.stderr
    assert "stall" in proc.stdout
    assert "held by c" in proc.stdout
    assert time.monotonic() - t0 < 30


# --------------------------------------------------------------------------------------------
# SIGTERM and SIGHUP end a run like Ctrl-C

# runs for about a minute: two process actors (one through the Manager), and a thread
LONG = """
name: long
timeout: 60
primitives:
  Q: queue
shared:
  n: 0
actors:
  - name: p1
    kind: process
    steps:
      - repeat: 10000000
        steps:
          - add: {var: n, value: 1}
  - name: p2
    kind: process
    steps:
      - get: Q
  - name: t
    kind: {thread_kind}
    steps:
      - log: going to sleep
      - sleep: 60
      - put: Q
"""


def _survivors(mark: str) -> list[str]:
    """Processes (other than this one) whose environment carries ``mark``: every process a
    command started inherits it, the forkserver, the resource tracker and the Manager too."""
    needle = f"TRACER_TEST_MARK={mark}".encode()
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if needle in env.split(b"\0"):
            out.append(f"{d.name}: {cmd[:120]}")
    return out


def _stop_while_running(args: list[str], cwd: Path, sig: int, group: bool,
                        ) -> tuple[subprocess.Popen[str], str, str, str]:
    """Start ``tracer ARGS``, wait for its 'running …' line (status: on stderr), send ``sig``
    to it (or to its process group), and return the process, its stdout, its stderr and the
    environment mark."""
    mark = uuid.uuid4().hex
    env = {**os.environ, "PYTHONUTF8": "1", "TRACER_TEST_MARK": mark}
    proc = subprocess.Popen([sys.executable, "-m", "tracer", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stderr is not None
        stderr = proc.stderr
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: lines.put(stderr.readline()), daemon=True)
        reader.start()
        first = lines.get(timeout=30)
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    return proc, out, first + rest, mark


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("sig", "code", "group"), [
    (signal.SIGTERM, 143, False),  # kill -TERM PID
    (signal.SIGTERM, 143, True),  # timeout 3 tracer run … (it signals the whole group)
    (signal.SIGHUP, 129, True),  # the terminal closed
])
def test_stop_signal_ends_the_run_like_ctrl_c(tmp_path: Path, sig: int, code: int,
                                              group: bool) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG.replace("{thread_kind}", "thread"), encoding="utf-8")
    out = tmp_path / "out.json"
    proc, stdout, err, mark = _stop_while_running(
        ["run", str(scenario), "-o", str(out)], tmp_path, sig, group)
    name = signal.Signals(sig).name
    assert err.startswith("running long")  # status on stderr, the outcome on stdout
    assert proc.returncode == code, (stdout, err)
    assert "Traceback" not in err and "Error" not in err, err
    assert f"interrupted by {name}" in stdout
    trace = json.loads(out.read_text(encoding="utf-8"))
    assert trace["outcome"] == {"status": "interrupted", "detail": f"interrupted by {name}"}
    assert [e["seq"] for e in trace["events"]] == list(range(len(trace["events"])))
    assert events(trace, actor="t", op="log", detail="going to sleep")
    # no actor was killed by the signal: the run stopped them
    assert not [e for e in events(trace, op="end") if e.get("result") == "error"]
    assert {a["name"]: a["status"] for a in trace["actors"]} == {
        "p1": "cancelled", "p2": "cancelled", "t": "cancelled"}
    assert _survivors(mark) == []


@pytest.mark.timeout(60)
def test_sigterm_ends_an_exploration_with_what_it_found(tmp_path: Path) -> None:
    scenario = tmp_path / "many.yaml"
    scenario.write_text("""
name: many
primitives:
  L: lock
actors:
  - name: p
    kind: process
    steps:
      - repeat: 3
        steps:
          - with: L
            steps:
              - log: in
  - name: t
    kind: thread
    steps:
      - with: L
        steps:
          - log: in
""", encoding="utf-8")
    mark = uuid.uuid4().hex
    env = {**os.environ, "PYTHONUTF8": "1", "TRACER_TEST_MARK": mark}
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "explore", str(scenario),
                             "--runs", "1000000", "--traces", str(tmp_path / "traces")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # explore prints nothing before it ends: it is exploring once a child is running
        _find(mark, "tracer:p", proc)
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    assert proc.returncode == 143, (out, err)
    assert "interrupted by SIGTERM" in err
    assert "Traceback" not in err
    assert "schedules" in out
    assert _survivors(mark) == []


# --------------------------------------------------------------------------------------------
# the event cap: a runaway run ends with a valid trace that says why

RUNAWAY = """
name: runaway_{kind}
timeout: 60
{cap}
actors:
  - name: r
    kind: {kind}
    steps:
      - repeat: 10000000
        steps:
          - repeat: 10000000
            steps:
              - log: x
"""


@pytest.mark.timeout(40)
@pytest.mark.parametrize("kind", ["thread", "coroutine", "process"])
def test_a_runaway_run_is_capped_with_a_valid_trace(kind: str) -> None:
    result, trace = run_yaml(RUNAWAY.format(kind=kind, cap="max_events: 5000"))
    assert result.status == "capped"
    assert trace["outcome"]["status"] == "capped"
    assert trace["outcome"]["detail"].startswith("stopped after 5,000 events (max_events)")
    evs = trace["events"]
    assert [e["seq"] for e in evs] == list(range(5001))  # the first 5,000, then the cap
    assert evs[-1]["op"] == "capped" and evs[-1]["actor"] is None
    assert evs[-1]["actors"] == ["r"]
    assert len(events(trace, actor="r", op="log")) == 4999  # its start, then its logs
    assert statuses(trace) == {"r": "cancelled"}
    assert trace["scenario"]["max_events"] == 5000


def test_cli_max_events_caps_the_run_and_replay_reads_it(tmp_path: Path) -> None:
    scenario = tmp_path / "runaway.yaml"
    scenario.write_text(RUNAWAY.format(kind="thread", cap=""), encoding="utf-8")
    out = tmp_path / "r.json"
    proc = tracer_cli("run", str(scenario), "--max-events", "300", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "runaway_thread: capped after" in proc.stdout
    assert "stopped after 300 events (max_events)" in proc.stdout
    trace = json.loads(out.read_text(encoding="utf-8"))
    assert len(trace["events"]) == 301
    for cmd in (["show", str(out)], ["analyze", str(out)]):
        shown = tracer_cli(*cmd, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
    replayed = tracer_cli("replay", str(out), cwd=tmp_path)
    assert "replayed 300 events, identical (capped" in replayed.stdout, replayed.stderr
    bad = tracer_cli("run", str(scenario), "--max-events", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_the_cap_defaults_to_a_million() -> None:
    plan = load_scenario_text(RUNAWAY.format(kind="thread", cap=""), "<test>")
    assert plan.scenario.event_cap() == 1_000_000
    assert "max_events" not in plan.scenario.as_mapping()


@pytest.mark.timeout(30)
def test_a_repeat_that_records_nothing_stops_at_the_timeout() -> None:
    # before: the actor could not be stopped (6 s more, and a leaked thread)
    result, _ = run_yaml("""
name: spin
timeout: 0.5
actors:
  - name: s
    kind: thread
    steps:
      - repeat: 10000000
        steps:
          - repeat: 10000000
            steps: []
""")
    assert result.status == "timeout"
    assert "could not be stopped" not in result.detail
    assert result.duration < 5


# --------------------------------------------------------------------------------------------
# the timeout holds while process actors are being started


@pytest.mark.timeout(60)
def test_the_timeout_holds_while_processes_start() -> None:
    # before: the watchdog first started all 300 children (seconds), then saw the timeout
    result, trace = run_yaml("""
name: many
timeout: 0.3
primitives:
  E: event
actors:
  - name: p
    kind: process
    count: 300
    steps:
      - wait: E
""")
    assert result.status == "timeout"
    (timeout,) = events(trace, op="timeout")
    assert timeout["ts"] < 0.3 + 1.5
    st = statuses(trace)
    assert set(st.values()) <= {"cancelled", "not_started"}
    assert "not_started" in st.values()


# --------------------------------------------------------------------------------------------
# a killed process actor or Manager is named as the cause, at once

KILLED = """
name: killed
timeout: 60
primitives:
  L: lock
shared:
  n: 0
actors:
  - name: p1
    kind: process
    steps:
      - acquire: L
      - repeat: 10000000
        steps:
          - add: {var: n, value: 1}
      - release: L
  - name: p2
    kind: process
    steps:
      - acquire: L
      - release: L
"""


def _find(mark: str, comm: str, proc: subprocess.Popen[str]) -> int:
    """The pid of the process of this command named ``comm`` (tracer names its children),
    once it is there."""
    needle = f"TRACER_TEST_MARK={mark}".encode()
    deadline = time.monotonic() + 30
    while True:
        for d in Path("/proc").iterdir():
            try:
                if (d / "comm").read_text().strip() == comm and \
                        needle in (d / "environ").read_bytes().split(b"\0"):
                    return int(d.name)
            except (OSError, ValueError):
                continue
        assert proc.poll() is None and time.monotonic() < deadline, f"no {comm} found"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("victim", ["tracer:p1", "tracer:Manager"])
def test_a_killed_process_is_named_as_the_cause(tmp_path: Path, victim: str) -> None:
    scenario = tmp_path / "killed.yaml"
    scenario.write_text(KILLED, encoding="utf-8")
    out = tmp_path / "k.json"
    mark = uuid.uuid4().hex
    env = {**os.environ, "PYTHONUTF8": "1", "TRACER_TEST_MARK": mark}
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "run", str(scenario), "-o",
                             str(out)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("running killed")  # set up, and running
        pid = _find(mark, victim, proc)
        os.kill(pid, signal.SIGKILL)
        stdout, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    assert proc.returncode == 1, (stdout, err)
    assert "Traceback" not in err and "internal error" not in err + stdout, (stdout, err)
    trace = json.loads(out.read_text(encoding="utf-8"))
    who = (f"process actor p1 (pid {pid})" if victim == "tracer:p1" else
           f"the Manager process (pid {pid}), which holds the shared variables and process "
           "queues,")
    cause = f"{who} was killed by signal 9 (SIGKILL)"
    assert trace["outcome"] == {"status": "error", "detail": cause}
    lines = stdout.splitlines()
    assert lines[0].startswith("killed: error after")
    assert lines[1] == f"  {cause}"  # right under the summary line, and alone
    assert trace["meta"]["duration"] < 30  # at once, not after a downstream stall
    assert _survivors(mark) == []


def test_a_wrong_start_method_is_one_clear_message(tmp_path: Path) -> None:
    scenario = tmp_path / "killed.yaml"
    scenario.write_text(KILLED, encoding="utf-8")
    env = {**os.environ, "PYTHONUTF8": "1", "TRACER_START_METHOD": "forkk"}
    for args in (["run", str(scenario)], ["explore", str(scenario), "--runs", "1"]):
        proc = subprocess.run([sys.executable, "-m", "tracer", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == ("tracer: error: the start method of process actors is 'forkk' "
                               "(from the environment variable TRACER_START_METHOD), which is "
                               "not one of forkserver, spawn, fork\n")


# --------------------------------------------------------------------------------------------
# misuse reads alike for every kind of actor


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_releasing_an_unheld_rlock_or_condition_is_a_clean_error(kind: str) -> None:
    result, trace = run_yaml(f"""
name: misuse_{kind}
timeout: 30
primitives:
  R: rlock
  C: condition
actors:
  - name: p
    kind: {kind}
    steps:
      - release: R
  - name: q
    kind: {kind}
    steps:
      - release: C
""")
    assert result.status == "error"
    assert "internal error" not in result.detail
    assert events(trace, actor="p", op="end")[0]["error"] == (
        "p released rlock R, which it does not hold (cannot release un-acquired lock)")
    assert events(trace, actor="q", op="end")[0]["error"] == (
        "q released condition C, which it does not hold (cannot release un-acquired lock)")


@pytest.mark.parametrize("kind", ["thread", "coroutine", "process"])
def test_add_on_a_string_is_a_clean_error(kind: str) -> None:
    result, trace = run_yaml(f"""
name: add_{kind}
timeout: 30
shared:
  v: 1
actors:
  - name: a
    kind: {kind}
    steps:
      - write: {{var: v, value: "s"}}
      - add: {{var: v, value: 1}}
""")
    assert result.status == "error"
    assert events(trace, actor="a", op="end")[0]["error"] == 'a cannot add 1 to v = "s"'


@pytest.mark.timeout(60)
def test_children_of_a_killed_runner_stop_quietly(tmp_path: Path) -> None:
    # before: with the runner killed (SIGKILL), p1 printed a BrokenPipeError traceback and
    # p2 and the Manager ran on for good
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG.replace("{thread_kind}", "thread"), encoding="utf-8")
    proc, _, err, mark = _stop_while_running(
        ["run", str(scenario), "-o", str(tmp_path / "x.json")], tmp_path, signal.SIGKILL,
        False)
    # (communicate returned: every process that shared its stderr has closed it, so exited)
    assert proc.returncode == -signal.SIGKILL
    assert "Traceback" not in err and "Error" not in err, err
    assert _survivors(mark) == []
