"""Scale: many actors each repeating a lock-protected `add`, through `tracer run` end to end.

One scenario of 1,000 thread actors, one of 10,000 coroutine actors and one of 32 process
actors, each actor repeating `with: L` + `add` REPEAT times. Each is run as a user runs it,
``tracer run SCENARIO -o TRACE -q`` in a subprocess (the run, writing the trace and its
analysis), timed by GNU time (``env time -f "%e %M"``: wall time, peak RSS of the command).
Prints the medians of several runs, whether the trace is complete (the final counter equals
actors x repeats, every actor ended ok), and the target beside the 10,000-coroutine case
(issue 15: <= 3 s, <= 400 MB). ``--tracer`` times another install's ``tracer``.

    .venv/bin/python bench/scale.py                      # all three
    .venv/bin/python bench/scale.py --case coroutine --runs 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {"thread": (1000, 10), "coroutine": (10_000, 3), "process": (32, 10)}
TARGETS = {"coroutine": "target <= 3 s, <= 400 MB"}


def scenario(kind: str, count: int, repeat: int) -> str:
    return f"""name: bench-scale
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
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--case", action="append", choices=sorted(CASES),
                    help="one case (repeatable; default: all)")
    ap.add_argument("--tracer", default=str(Path(sys.executable).with_name("tracer")))
    args = ap.parse_args()
    time_bin = shutil.which("time") or "/usr/bin/time"
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.case or list(CASES):
            count, repeat = CASES[kind]
            path = Path(tmp) / f"{kind}.yaml"
            path.write_text(scenario(kind, count, repeat), encoding="utf-8")
            out = Path(tmp) / "t.json"
            walls, rss = [], []
            for _ in range(args.runs):
                proc = subprocess.run([time_bin, "-f", "%e %M", args.tracer, "run", str(path),
                                       "-o", str(out), "-q"], capture_output=True, text=True,
                                      timeout=900, check=False)
                if proc.returncode != 0:
                    sys.exit(f"tracer run exited {proc.returncode}:\n{proc.stderr}")
                wall, kb = proc.stderr.strip().splitlines()[-1].split()
                walls.append(float(wall))
                rss.append(int(kb) / 1024)
            trace = json.loads(out.read_text(encoding="utf-8"))
            ends = [e for e in trace["events"] if e["op"] == "end" and e["result"] == "ok"]
            complete = trace["final"]["n"] == count * repeat and len(ends) == count
            target = f"   ({TARGETS[kind]})" if kind in TARGETS else ""
            print(f"{count:>6} {kind:<9} x {repeat:>2} adds, `tracer run` end to end: "
                  f"{trace['outcome']['status']}, {statistics.median(walls):6.2f} s, peak RSS "
                  f"{statistics.median(rss):5.0f} MB, {len(trace['events']):>8,} events, "
                  f"complete={complete}, median of {args.runs}{target}")


if __name__ == "__main__":
    main()
