"""Pausing the cyclic garbage collector around bulk work.

Recording a run, writing its trace and reading one back each allocate millions of small
objects that never form cycles. The collector would walk them again and again as they pile
up, doubling the cost (bench/record.py, bench/analyze.py); reference counting still frees
everything as usual while it is paused.

What a run leaves in reference cycles (its actors' contexts, primitives and compiled steps
refer to each other) waits for the collector. For a run with process actors that includes
multiprocessing locks, whose finalizers call the resource tracker: collected at a moment of
the collector's choosing, they may run inside one of the tracker's own calls, which CPython
3.13.0 to 3.13.6 refuse ("Exception ignored in: <Finalize object, dead>", ReentrantCallError;
python/cpython#109593, #131788). :func:`collect_run` frees them at a safe point instead."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (nested uses are fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()



def collect_run(used_processes: bool) -> None:
    """Collect what a finished run left in reference cycles, if it had process actors.

    Called in the thread that ran it, once its actor threads, children and helper threads
    have stopped and it is no longer referenced: no resource tracker call is under way here,
    so the finalizers of its multiprocessing locks run now and safely, not later inside one
    (see the module's docstring). A run without processes holds no such lock and skips it:
    a collection costs time in proportion to what the process holds."""
    if used_processes:
        gc.collect()
