"""Peak memory and time of `tracer analyze`, `show` and `export --chrome` on one big trace,
measured as a user runs them.

All three read the trace through the one reader (tracer/trace/_read.py); show prints its
timeline line by line and export writes its Chrome events as it makes them, so neither should
need more than analyze (issue 15's target: show's and export's peak RSS <= analyze's). Each
command runs as a user types it, under GNU time (`env time -f "%e %M" .venv/bin/tracer ...`:
wall time and peak resident memory, which counts everything, C allocations included), several
times, alternating; the medians are printed beside the target.

    .venv/bin/python bench/memory.py [--events 2000000] [--runs 3] [--tracer PATH-TO-TRACER]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from analyze import generate, gnu_time, tracer_exe  # bench/analyze.py, beside this file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tracer", default=None,
                    help="A tracer executable to measure (default: the one beside this "
                         "python).")
    ap.add_argument("--generate-only", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_only:
        print(generate(Path(args.generate_only), args.events))
        return
    tracer = args.tracer or tracer_exe()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        # made in a process of its own, so that this one stays small
        n = int(subprocess.run([sys.executable, __file__, "--events", str(args.events),
                                "--generate-only", str(path)], check=True,
                               capture_output=True, text=True).stdout)
        size = path.stat().st_size
        print(f"trace: {n:,} events, {size / 1e6:.0f} MB, written by tracer's trace writer")
        runs = {
            "analyze": [tracer, "analyze", str(path), "--no-graphs"],
            "show": [tracer, "show", str(path)],
            "export": [tracer, "export", str(path), "--chrome", str(Path(tmp) / "c.json")],
        }
        for cmd in runs.values():
            print(f"  $ env time -f '%e %M' {' '.join(cmd)}")
        got: dict[str, list[tuple[float, int]]] = {name: [] for name in runs}
        for _ in range(args.runs):  # alternating: the machine's load falls on all alike
            for name, cmd in runs.items():
                got[name].append(gnu_time(cmd))
        peak = {name: statistics.median(m for _, m in v) for name, v in got.items()}
        for name, v in got.items():
            secs = statistics.median(t for t, _ in v)
            ratio = "" if name == "analyze" else \
                f" = {peak[name] / peak['analyze']:.2f}x analyze's (target <= 1x)"
            print(f"{name:<8} {secs:6.1f} s  peak RSS {peak[name] / 1e6:6.0f} MB{ratio}")
        print(f"(medians of {args.runs} runs of each, alternating; wall time and peak RSS "
              "from GNU time)")


if __name__ == "__main__":
    main()
