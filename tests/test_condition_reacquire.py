"""A condition waiter that must take its lock back can be part of a deadlock.

After its wait times out (or is notified), a condition's waiter waits to re-acquire the
condition's lock. If the holder of that lock waits for a lock the waiter holds, that is a
cycle: `tracer run` must report the deadlock as it does for two plain locks, not wait for the
scenario's timeout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tracer_cli

# t1 holds A, then waits on C (its lock L released meanwhile); t2, let in by E once t1 is in
# C, takes C's lock as soon as t1's wait gives it up, then wants A. When t1's wait times
# out, t1 waits for L (held by t2), t2 for A (held by t1).
SCENARIO = """\
name: condlock
timeout: 5
primitives:
  L: lock
  C: {type: condition, lock: L}
  A: lock
  E: event
actors:
  - name: t1
    kind: {kind}
    steps:
      - with: A
        steps:
          - with: C
            steps: [{set: E}, {wait: C, timeout: 0.2}]
  - name: t2
    kind: {kind}
    steps:
      - wait: E
      - with: C
        steps: [{with: A, steps: [log: y]}]
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_condition_reacquire_deadlock_is_reported(tmp_path: Path, kind: str) -> None:
    scenario = tmp_path / "condlock.yaml"
    scenario.write_text(SCENARIO.replace("{kind}", kind), encoding="utf-8")
    out = tmp_path / "condlock.json"
    proc = tracer_cli("run", str(scenario), "-o", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    trace = json.loads(out.read_text(encoding="utf-8"))
    assert trace["outcome"]["status"] == "deadlock", trace["outcome"]
    (dl,) = [e for e in trace["events"] if e["op"] == "deadlock"]
    assert sorted(dl["actors"]) == ["t1", "t2"]
    assert {"A", "C"} <= set(dl["objects"])
    waits = {w["actor"]: w for w in dl["waits"]}
    # t1 waits to take C's lock back (held by t2) while holding A; t2 waits for A
    assert waits["t1"]["op"] == "acquire" and waits["t1"]["target"] == "C"
    assert waits["t1"]["holds"] == ["A"] and waits["t1"]["providers"] == ["t2"]
    assert waits["t2"]["target"] == "A" and waits["t2"]["providers"] == ["t1"]
    assert "L" in waits["t2"]["holds"]
    assert "deadlock" in proc.stdout
