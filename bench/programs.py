"""What ``tracer run prog.py`` costs an unchanged program, against ``python prog.py``.

Three small programs, each run bare (``python prog.py``) and traced (``tracer run prog.py``),
several times (medians: this machine is shared and noisy):

(a) two threads each take and release one lock N times (``with lock:``, the lock and the
    count in locals: no shared access besides it): the cost per recorded lock operation
    (an acquire and a release are two operations; target <= 3 us);
(b) a method does ``self.x += 1`` N times on an object of a user class (a read and a write
    each): the cost per recorded shared access (target <= 1.5 us) -- when the rewrite that
    records shared accesses is there (``tracer.program._rewrite``), else "n/a (no rewrite)";
(c) a CPU-bound loop over locals (100 N rounds): the slowdown (target <= 1.2x).

Each program runs its loop twice and times each (``perf_counter`` around it, printed as
``FIRST seconds`` and ``LOOP seconds``); the per-operation figures and the slowdown are the
second loop's, bare and traced in one process each: start-up, writing the trace and analysing
it are not in them, nor is the host's start-up, which overlaps the first loop (its watchdog
thread imports the wait-for analysis then, ~0.15 s holding the GIL by turns with the program):
the first loop's slowdown is printed beside them, and the loop's CPU time (``process_time``,
the program's and the host's own threads together), which a machine busy with other work
disturbs less than the wall time. What the whole command costs a user is
printed too, as GNU time measures it (``env time -f "%e %M"``: wall seconds, peak resident KB
of the command and the largest of its children, the host).

    .venv/bin/python bench/programs.py [--runs 5] [--n 100000]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

Figures = tuple[float, float, int, float, float]

LOCKS = """
import sys, threading, time
n = int(sys.argv[1])


def work(lock, n):  # (locals only: no shared access besides the lock's operations)
    for _ in range(n):
        with lock:
            pass

lock = threading.Lock()
for label in ("FIRST", "LOOP"):
    t0, c0 = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=work, args=(lock, n)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(label, time.perf_counter() - t0, time.process_time() - c0)
"""

ACCESS = """
import sys, time
n = int(sys.argv[1])

class Counter:
    def __init__(self):
        self.x = 0

    def count(self, n):
        for _ in range(n):
            self.x += 1

c = Counter()
for label in ("FIRST", "LOOP"):
    t0, c0 = time.perf_counter(), time.process_time()
    c.count(n)
    print(label, time.perf_counter() - t0, time.process_time() - c0)
"""

LOCALS = """
import sys, time
n = int(sys.argv[1])

def crunch(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s

for label in ("FIRST", "LOOP"):
    t0, c0 = time.perf_counter(), time.process_time()
    crunch(n)
    print(label, time.perf_counter() - t0, time.process_time() - c0)
"""


def run(cmd: list[str], cwd: Path) -> Figures:
    """(the second loop's seconds, the command's wall seconds, its peak RSS in KB, the first
    loop's seconds, the second loop's CPU seconds) of one run."""
    proc = subprocess.run(["env", "time", "-f", "TIME %e %M", *cmd], cwd=cwd, text=True,
                          capture_output=True, timeout=600, check=False)
    first = re.search(r"^FIRST (\S+) (\S+)$", proc.stdout, re.M)
    loop = re.search(r"^LOOP (\S+) (\S+)$", proc.stdout, re.M)
    gnu = re.findall(r"^TIME (\S+) (\d+)$", proc.stderr, re.M)
    if first is None or loop is None or not gnu or proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return (float(loop.group(1)), float(gnu[-1][0]), int(gnu[-1][1]), float(first.group(1)),
            float(loop.group(2)))


def measure(source: str, n: int, runs: int, tmp: Path, name: str
            ) -> tuple[Figures, Figures]:
    """Medians of (loop s, wall s, peak KB, first loop s), bare and traced, alternating."""
    path = tmp / f"{name}.py"
    path.write_text(source)
    bare_cmd = [sys.executable, str(path), str(n)]
    traced_cmd = [sys.executable, "-m", "tracer", "run", str(path), "-o",
                  str(tmp / f"{name}.json"), "--timeout", "600", "--", str(n)]
    bare, traced = [], []
    for _ in range(runs):
        bare.append(run(bare_cmd, tmp))
        traced.append(run(traced_cmd, tmp))

    def med(xs: list[Figures]) -> Figures:
        return (statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs),
                int(statistics.median(x[2] for x in xs)), statistics.median(x[3] for x in xs),
                statistics.median(x[4] for x in xs))
    return med(bare), med(traced)


def command(bare: Figures, traced: Figures) -> str:
    return (f"whole command {traced[1]:.2f} s / {traced[2] / 1024:.0f} MB traced, "
            f"{bare[1]:.2f} s / {bare[2] / 1024:.0f} MB bare")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=100_000,
                    help="loop iterations (per thread for the locks)")
    args = ap.parse_args()
    n, runs = args.n, args.runs
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(os.path.realpath(d))
        bare, traced = measure(LOCKS, n, runs, tmp, "locks")
        ops = 2 * 2 * n  # 2 threads x n pairs x (acquire + release)
        us = (traced[0] - bare[0]) / ops * 1e6
        us1 = (traced[3] - bare[3]) / ops * 1e6
        cpu = (traced[4] - bare[4]) / ops * 1e6
        print(f"(a) lock: {us:.2f} us per recorded lock operation ({cpu:.2f} us of CPU; "
              "target <= 3 us; "
              f"{ops:,} operations, loop {traced[0]:.2f} s traced vs {bare[0]:.2f} s bare, "
              f"median of {runs}; first loop {us1:.2f} us); {command(bare, traced)}")
        if importlib.util.find_spec("tracer.program._rewrite") is None:
            print("(b) shared access: n/a (no rewrite)")
        else:
            bare, traced = measure(ACCESS, n, runs, tmp, "access")
            accesses = 2 * n  # self.x += 1: a read and a write
            us = (traced[0] - bare[0]) / accesses * 1e6
            us1 = (traced[3] - bare[3]) / accesses * 1e6
            cpu = (traced[4] - bare[4]) / accesses * 1e6
            print(f"(b) shared access: {us:.2f} us per recorded access ({cpu:.2f} us of CPU; "
                  "target <= 1.5 us; "
                  f"{accesses:,} accesses, loop {traced[0]:.2f} s traced vs {bare[0]:.2f} s "
                  f"bare, median of {runs}; first loop {us1:.2f} us); {command(bare, traced)}")
        bare, traced = measure(LOCALS, 100 * n, runs, tmp, "locals")
        print(f"(c) CPU-bound loop over locals: {traced[0] / bare[0]:.2f}x under tracer run "
              f"({traced[4] / bare[4]:.2f}x in CPU) "
              f"(target <= 1.2x; loop {traced[0]:.3f} s traced vs {bare[0]:.3f} s bare, "
              f"median of {runs}; first loop {traced[3] / bare[3]:.2f}x); "
              f"{command(bare, traced)}")


if __name__ == "__main__":
    main()
