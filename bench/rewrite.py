"""What the import-time rewrite of user modules costs per shared access.

Compiles small user programs twice, plainly and through ``tracer.program._rewrite``, runs each
in this process and prints, as medians of several runs (this machine is shared and noisy):

- ns per *recorded* attribute access (an instance of a user class; RECORD a trivial function
  appending to a list), per recorded module-variable access and per recorded list item
  access, over the bare program (target: <= 1500 ns);
- ns per *non-recorded* attribute access (an object of a non-user class, RECORD set; and any
  access with RECORD None, the passthrough), over the bare program;
- the slowdown of a CPU-bound loop over locals (target: <= 1.2x).

    .venv/bin/python bench/rewrite.py [--runs 7] [--n 200000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from tracer.program import _access
from tracer.program._rewrite import rewrite_source

PROGRAM = """
import types

class Account:
    def __init__(self):
        self.money = 0

account = Account()
plain = types.SimpleNamespace(money=0)
total = 0
cells = [0, 0]

def attrs(n):
    a = account
    for _ in range(n):
        a.money = a.money + 1          # 2 accesses per turn

def others(n):
    a = plain
    for _ in range(n):
        a.money = a.money + 1          # 2 accesses of a non-user object

def globs(n):
    global total
    for _ in range(n):
        total = total + 1              # 2 accesses of a module variable

def items(n):
    c = cells
    for _ in range(n):
        c[0] = c[0] + 1                # 2 accesses of a list item

def locs(n):
    s = 0
    for i in range(n):
        s += (i * i) % 7 ^ (s & 3)     # locals only
    return s
"""


def load(rewritten: bool) -> dict[str, Any]:
    g: dict[str, Any] = {"__name__": "benchprog"}
    if rewritten:
        code = rewrite_source(PROGRAM, "benchprog.py", "benchprog.py")
    else:
        code = compile(PROGRAM, "benchprog.py", "exec")
    exec(code, g)
    return g


def timed(fn: Callable[[int], object], n: int) -> float:
    t = time.perf_counter()
    fn(n)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    n, runs = args.n, args.runs
    bare, rew = load(False), load(True)
    records: list[tuple[str, str, Any, str]] = []

    def record(op: str, target: str, value: Any, site: str) -> None:
        records.append((op, target, value, site))

    cases = ["attrs", "others", "globs", "items", "locs"]
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(runs):
        for case in cases:
            times.setdefault(("bare", case), []).append(timed(bare[case], n))
            _access.RECORD = None
            times.setdefault(("passthrough", case), []).append(timed(rew[case], n))
            _access.RECORD = record
            times.setdefault(("recorded", case), []).append(timed(rew[case], n))
            _access.RECORD = None
            records.clear()
    med = {k: statistics.median(v) for k, v in times.items()}

    def per_access(mode: str, case: str) -> float:
        return (med[(mode, case)] - med[("bare", case)]) / (2 * n) * 1e9

    print(f"n={n} turns, 2 accesses each, medians of {runs} runs; ns per access over bare:")
    print(f"  recorded attribute (user class):     {per_access('recorded', 'attrs'):7.0f} ns")
    print(f"  recorded module variable:            {per_access('recorded', 'globs'):7.0f} ns")
    print(f"  recorded list item:                  {per_access('recorded', 'items'):7.0f} ns")
    print(f"  non-recorded attribute (RECORD set): {per_access('recorded', 'others'):7.0f} ns")
    print(f"  any attribute, RECORD None:          {per_access('passthrough', 'attrs'):7.0f} ns")
    bare_ns = med[("bare", "attrs")] / (2 * n) * 1e9
    print(f"  bare attribute access itself:        {bare_ns:7.0f} ns")
    ratio = med[("recorded", "locs")] / med[("bare", "locs")]
    print(f"CPU-bound loop over locals, rewritten / bare: {ratio:.2f}x")


if __name__ == "__main__":
    main()
