"""Scale: many actors each repeating a lock-protected `add`, run to completion.

One scenario of 1,000 thread actors, one of 10,000 coroutine actors and one of 32 process
actors, each actor repeating `with: L` + `add` REPEAT times. Prints the run time, the time to
write the trace, the number of events, whether the trace is complete (the final counter equals
actors x repeats, every actor ended ok) and the peak memory (max RSS) of the process, for one
scenario per process so that the figures do not mix.

    .venv/bin/python bench/scale.py            # all three, each in a fresh process
    .venv/bin/python bench/scale.py thread 1000 10
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tracer import load_scenario_text, run_plan

CASES = [("thread", 1000, 10), ("coroutine", 10_000, 3), ("process", 32, 10)]


def one(kind: str, count: int, repeat: int) -> None:
    plan = load_scenario_text(f"""
name: bench-scale
timeout: 600
primitives: {{L: lock}}
shared: {{n: 0}}
actors:
  - name: w
    kind: {kind}
    count: {count}
    steps:
      - repeat: {repeat}
        steps: [{{with: L, steps: [{{add: {{var: n, value: 1}}}}]}}]
""")
    t = time.perf_counter()
    result = run_plan(plan)
    ran = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = Path(tmp) / "t.json"
        result.write(path)
        wrote = time.perf_counter() - t
        trace = json.loads(path.read_text(encoding="utf-8"))
    ends = [e for e in trace["events"] if e["op"] == "end" and e["result"] == "ok"]
    complete = trace["final"]["n"] == count * repeat and len(ends) == count
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{count:>6} {kind:<9} x {repeat:>2} adds: {result.status}, run {ran:6.2f} s, "
          f"write {wrote:5.2f} s, {result.event_count:>8,} events, complete={complete}, "
          f"peak RSS {rss:.0f} MB (largest child {kids:.0f} MB)")


def main() -> None:
    if len(sys.argv) == 4:
        one(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
        return
    for kind, count, repeat in CASES:
        subprocess.run([sys.executable, __file__, kind, str(count), str(repeat)], check=True)


if __name__ == "__main__":
    main()
