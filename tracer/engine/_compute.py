"""The CPU work of a ``compute: N`` step: N units of pure-Python work.

A unit is a fixed number of steps of a small integer loop (a linear congruential generator),
so the same scenario does the same work on every machine; :data:`STEPS_PER_UNIT` was chosen
so that one unit takes about a millisecond on the development machine: 16,000 steps take
1.00 ms (median of 9 runs of ``compute 200``, in-process, one thread: 0.198-0.200 s; CPU time
the same) under CPython 3.11.7 on a 2-core AMD EPYC virtual machine (x86_64, Linux).
``bench/compute.py`` prints what a unit takes here, and the STEPS_PER_UNIT that would make it
1 ms. A faster or slower machine, another Python, a loaded machine: the same units take
proportionally less or more wall time.

The loop holds the GIL as any Python code does (the interpreter only lets go of it every
``sys.getswitchinterval()``, 5 ms, to let another thread run Python): two threads computing
take about twice one thread's time, two processes about the same (on 2+ cores). Under
``tracer run`` the work is done where the actor runs (a process actor's child computes in its
own interpreter); under replay and explore the scheduler's ``compute`` hook does not call
:func:`work` at all.
"""

from __future__ import annotations

STEPS_PER_UNIT = 16_000


def work(units: float) -> None:
    """Do ``units`` units of pure-Python CPU work (``int(units * STEPS_PER_UNIT)`` steps)."""
    x = 1
    for _ in range(int(units * STEPS_PER_UNIT)):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


__all__ = ["STEPS_PER_UNIT", "work"]
