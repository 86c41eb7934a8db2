"""The CPU work of a ``compute: N`` step: N units of pure-Python work.

A unit is a fixed number of steps of a small integer loop (a linear congruential generator),
so the same scenario does the same work on every machine; :data:`STEPS_PER_UNIT` was chosen
so that one unit takes about a millisecond on the project's 2-core CI machine under CPython
3.11 (``bench/compute.py`` prints what it takes here). The loop holds the GIL as any Python
code does: two threads computing take about twice one thread's time, two processes about the
same (on 2+ cores).
"""

from __future__ import annotations

STEPS_PER_UNIT = 20_000


def work(units: float) -> None:
    """Do ``units`` units of pure-Python CPU work."""
    x = 1
    for _ in range(int(units * STEPS_PER_UNIT)):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


__all__ = ["STEPS_PER_UNIT", "work"]
