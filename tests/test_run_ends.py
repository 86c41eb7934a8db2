"""Every run ends, on time, with its trace (issue 10, item 4): a waiter whose lock is held
by an ended actor, SIGTERM/SIGHUP, the event cap, process start-up under the timeout, killed
children, and clean messages for misuse of process and coroutine primitives.

No sleep synchronises anything here: orders are forced with events, and a signal is sent
only once the CLI has printed its 'running …' line.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import events, run_yaml, statuses, tracer_cli

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
@pytest.mark.parametrize("kind", ["thread", "coroutine", "process"])
def test_waiter_on_a_lock_held_by_an_ended_actor_ends_the_run(kind: str) -> None:
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
