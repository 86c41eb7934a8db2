"""Pausing the cyclic garbage collector around bulk work.

Recording a run, writing its trace and reading one back each allocate millions of small
objects that never form cycles. The collector would walk them again and again as they pile
up, doubling the cost (bench/record.py, bench/analyze.py); reference counting still frees
everything as usual while it is paused."""

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
