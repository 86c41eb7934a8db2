"""Regressions for the engine bugs the property-based test (test_properties.py) found.

1. A rlock (or a thread condition's own RLock) is owned by an *actor*, not by a thread ident:
   CPython gives a new thread the ident of one that has ended, and the real RLock then let the
   new actor release, or take again at once, what the ended actor still held.
2. A daemon coroutine that a run abandons must not leave its asyncio task pending when the
   event loop closes ("Task was destroyed but it is pending!").
3. Joining a thread actor that the runner has made but not started yet waits for its end (it
   ended the joiner with "internal error in tracer: RuntimeError: cannot join thread before it
   is started").
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import end_of, events, run_yaml

from tracer import load_scenario_text, run_plan
from tracer.analyze import parse_trace_data
from tracer.api import explore
from tracer.engine.actors.coroutine import AioHost
from tracer.engine.schedule.replay import ReplayScheduler, first_difference, recorded_steps
from tracer.scenario import plan_from_mapping

# `later` is started only once `first` has been joined: its thread is made after `first`'s has
# ended, so CPython usually gives it `first`'s ident (which made the bug show every time)
AFTER_HOLDER = """
name: after_holder
timeout: 10
primitives:
  R: {{type: {ptype}}}
actors:
  - name: first
    kind: thread
    steps:
      - acquire: R
  - name: later
    kind: thread
    autostart: false
    steps:
      - {step}
  - name: starter
    kind: thread
    steps:
      - join: first
      - start: later
"""


def _replay(trace_text: str) -> tuple[str, str | None]:
    """Replay a trace in process: its status and the first difference from the recording."""
    data = parse_trace_data(trace_text, "<trace>")
    sched = ReplayScheduler(recorded_steps(data.events), patience=2.0)
    result = run_plan(plan_from_mapping(data.scenario, "<trace>"), sched, mode="replay")
    replayed = parse_trace_data(result.to_json(), "<replay>")
    diff = sched.divergence.message() if sched.divergence else first_difference(
        data.events, replayed.events)
    return result.status, diff


def _acquire_results(trace: dict[str, Any], actor: str) -> list[str]:
    return [e["result"] for e in events(trace, actor=actor, op="acquire", phase="return")]


# --- 1. rlock ownership by actor


def test_release_of_a_rlock_an_ended_actor_holds_is_a_misuse_error() -> None:
    for _ in range(5):  # the ident is reused most of the time: every run must refuse it
        result, trace = run_yaml(AFTER_HOLDER.format(ptype="rlock", step="release: R"))
        expected = ("later released rlock R, which it does not hold "
                    "(cannot release un-acquired lock)")
        assert result.status == "error"
        assert end_of(trace, "later")["error"] == expected
        (release,) = events(trace, actor="later", op="release", target="R")
        assert release["error"] == expected


def test_rlock_held_by_an_ended_actor_is_not_taken_by_a_later_one() -> None:
    for _ in range(5):
        _, trace = run_yaml(AFTER_HOLDER.format(ptype="rlock",
                                                step="{acquire: R, timeout: 0.05}"))
        assert _acquire_results(trace, "first") == ["ok"]
        assert _acquire_results(trace, "later") == ["timeout"]
        assert _replay(json.dumps(trace)) == ("ok", None)


def test_blocking_acquire_of_a_rlock_held_by_an_ended_actor_is_a_stall() -> None:
    result, trace = run_yaml(AFTER_HOLDER.format(ptype="rlock", step="acquire: R"))
    assert result.status == "stall"
    assert "later waits for R (line 15), held by first, which ended without releasing it" \
        in result.detail
    assert _acquire_results(trace, "later") == []


def test_a_condition_s_own_lock_is_owned_by_the_actor_too() -> None:
    _, trace = run_yaml(AFTER_HOLDER.format(ptype="condition",
                                            step="{acquire: R, timeout: 0.05}"))
    assert _acquire_results(trace, "later") == ["timeout"]
    _, trace = run_yaml(AFTER_HOLDER.format(ptype="condition", step="release: R"))
    assert end_of(trace, "later")["error"] == (
        "later released condition R, which it does not hold (cannot release un-acquired lock)")


def test_copies_of_one_actor_never_hold_a_rlock_at_once() -> None:
    text = """
name: copies
timeout: 10
primitives:
  R: {type: rlock}
actors:
  - name: t
    kind: thread
    count: 2
    steps:
      - {acquire: R, timeout: 0.05}
"""
    for _ in range(10):
        _, trace = run_yaml(text)
        got = sorted(_acquire_results(trace, "t[0]") + _acquire_results(trace, "t[1]"))
        assert got == ["ok", "timeout"], got


def test_the_holder_still_reenters_and_releases_its_rlock() -> None:
    text = """
name: reenter
timeout: 10
primitives:
  R: {type: rlock}
actors:
  - name: t
    kind: thread
    count: 2
    steps:
      - acquire: R
      - acquire: R
      - release: R
      - release: R
"""
    for _ in range(5):
        result, trace = run_yaml(text)
        assert result.status == "ok", result.detail
        assert _acquire_results(trace, "t[0]") == _acquire_results(trace, "t[1]") == ["ok"] * 2


def test_explore_finds_no_foreign_rlock_release_or_reentry() -> None:
    # explore runs actors on reused worker threads: the ident is the same for sure
    plan = load_scenario_text(AFTER_HOLDER.format(ptype="rlock",
                                                  step="{acquire: R, timeout: 0.05}"), "<t>")
    out = explore(plan, runs=10, seed=0, strategy="random", depth=3)
    assert out.runs == 10
    assert {g["kind"] for g in out.groups.values()} <= {"potential_deadlock"}, out.groups


# --- 2. an abandoned daemon coroutine


def test_an_abandoned_daemon_coroutine_leaves_no_pending_task() -> None:
    script = textwrap.dedent("""
        from tracer import load_scenario_text, run_plan
        text = '''
        name: daemon_coroutine
        actors:
          - {name: t, kind: thread, steps: [log: hi]}
          - {name: c, kind: coroutine, daemon: true, steps: [sleep: 0]}
        '''
        for _ in range(20):
            result = run_plan(load_scenario_text(text, "<t>"))
            assert result.status == "ok", result.detail
        print("done")
    """)
    r = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done"
    assert "Task was destroyed but it is pending" not in r.stderr
    assert "was never awaited" not in r.stderr
    assert r.stderr == ""


def test_host_cancels_a_task_it_had_yet_to_create() -> None:
    """Deterministic: the loop is busy while a thread spawns a coroutine, then the run stops.
    The task made after the stop was asked must still be cancelled and awaited."""
    host = AioHost()
    host.start()
    busy, free = threading.Event(), threading.Event()

    def hold_loop() -> None:
        busy.set()
        free.wait(10)  # the loop runs nothing else until the spawn below is queued
    host.loop.call_soon_threadsafe(hold_loop)
    assert busy.wait(10)

    async def actor() -> None:
        await asyncio.Event().wait()  # ends only when cancelled

    host.spawn("c", actor)
    left: list[str] = []
    stopper = threading.Thread(target=lambda: left.extend(host.stop(2.0)))
    stopper.start()
    free.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert left == []
    assert host.loop.is_closed()
    assert host.tasks == {}


# --- 3. join of an actor not started yet


JOIN_COPIES = """
name: join_copies
timeout: 10
actors:
  - name: a0
    kind: thread
    steps:
      - join: a1
  - name: a1
    kind: thread
    count: 2
    steps:
      - sleep: 0
"""


def test_join_of_a_thread_actor_not_started_yet_waits_for_its_end() -> None:
    for _ in range(20):  # the runner starts a1's copies after a0: a0 often joins first
        result, trace = run_yaml(JOIN_COPIES)
        assert result.status == "ok", result.detail
        joins = events(trace, actor="a0", op="join", phase="return")
        assert sorted((e["target"], e["result"]) for e in joins) == [
            ("a1[0]", "ok"), ("a1[1]", "ok")]
        for e in joins:
            (end,) = events(trace, actor=e["target"], op="end")
            assert end["seq"] < e["seq"]  # a join returns after the joined actor's end


def test_join_of_a_thread_actor_not_started_yet_under_replay_and_explore() -> None:
    for _ in range(3):
        _, trace = run_yaml(JOIN_COPIES)
        assert _replay(json.dumps(trace)) == ("ok", None)
    out = explore(load_scenario_text(JOIN_COPIES, "<t>"), runs=10, seed=0, strategy="random",
                  depth=3)
    assert out.runs == 10
    assert out.groups == {}


# --- 4. found while checking the fuzz: a process actor's name in /proc/PID/stat


def test_a_process_actor_with_a_non_ascii_name_runs_and_leaves_no_process() -> None:
    import multiprocessing

    text = """
name: unicode_process
timeout: 10
actors:
  - {name: 甲, kind: process, steps: [sleep: 0]}
"""
    result, trace = run_yaml(text)
    assert result.status == "ok", result.detail
    assert end_of(trace, "甲")["result"] == "ok"
    assert [p for p in multiprocessing.active_children() if p.name == "tracer:甲"] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_liveness_check_reads_a_non_ascii_process_name() -> None:
    """The runner asks whether a process actor still runs from /proc/PID/stat, whose name field
    is the process's own (a child names itself after its actor): here, this process's."""
    import ctypes
    import os

    from tracer.engine._proc import alive as _alive

    libc = ctypes.CDLL(None)
    old = ctypes.create_string_buffer(32)
    assert libc.prctl(16, old, 0, 0, 0) == 0  # PR_GET_NAME
    try:
        assert libc.prctl(15, "tracer:甲".encode(), 0, 0, 0) == 0  # PR_SET_NAME
        assert "甲".encode() in Path(f"/proc/{os.getpid()}/stat").read_bytes()
        assert _alive(os.getpid())
    finally:
        libc.prctl(15, old.value, 0, 0, 0)
