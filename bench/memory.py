"""Peak memory and time of `tracer analyze`, `show` and `export --chrome` on one big trace.

All three read the trace through the one reader (tracer/trace/_read.py); show prints its
timeline line by line and export writes its Chrome events as it makes them, so neither should
need much more than analyze (target: show and export peak at most 2x analyze's). Each command
runs as its own process (`python -m tracer ...`); its peak resident memory comes from the
kernel (wait4's ru_maxrss), so it counts everything, C allocations included.

    .venv/bin/python bench/memory.py [--events 2000000] [--tracer PATH-TO-TRACER]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from analyze import generate  # bench/analyze.py, beside this file


def measure(cmd: list[str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in bytes, exit code) of ``cmd``, its output thrown away."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_maxrss * 1024, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--tracer", default=None,
                    help="A tracer executable to measure (default: python -m tracer).")
    ap.add_argument("--generate-only", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_only:
        print(generate(Path(args.generate_only), args.events))
        return
    tracer = [args.tracer] if args.tracer else [sys.executable, "-m", "tracer"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        # made in a process of its own: a child forked from a big parent would count the
        # parent's pages in its peak (ru_maxrss) before it execs
        n = int(subprocess.run([sys.executable, __file__, "--events", str(args.events),
                                "--generate-only", str(path)], check=True,
                               capture_output=True, text=True).stdout)
        size = path.stat().st_size
        print(f"trace: {n:,} events, {size / 1e6:.0f} MB")
        runs = {
            "analyze": [*tracer, "analyze", str(path), "--no-graphs"],
            "show": [*tracer, "show", str(path)],
            "export": [*tracer, "export", str(path), "--chrome", str(Path(tmp) / "c.json")],
        }
        peaks: dict[str, int] = {}
        for name, cmd in runs.items():
            secs, peak, _ = measure(cmd)
            peaks[name] = peak
            ratio = "" if name == "analyze" else \
                f" = {peak / peaks['analyze']:.2f}x analyze's (target <= 2x)"
            print(f"{name:<8} {secs:6.1f} s  peak {peak / 1e6:6.0f} MB{ratio}")


if __name__ == "__main__":
    main()
