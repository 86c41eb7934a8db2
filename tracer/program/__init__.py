"""Tracing unchanged Python programs: ``tracer run prog.py``.

Design. The program runs in a *host* process of its own (``_host``), started by the command
(``_launch``), so that a program that deadlocks, never ends, calls ``sys.exit`` or installs
signal handlers can always be ended cleanly and its trace kept. In the host:

- ``_patch`` patches the standard library's primitives *in place* (methods of the Python
  classes; the factories of the C locks), so that pickling and identity keep working; an
  object is recorded only when the user's code made it (the creator's frame decides), so the
  standard library's own locks (inside Event, Queue, logging, Thread start-up) stay bare;
- ``_seam`` is the one place every patched primitive calls: it records an event in the
  calling actor's buffer (an actor is a thread of the program), and hands blocking to the
  run's scheduler;
- ``_rewrite`` and ``_access`` record the reads and writes of module globals, object
  attributes and list/dict items of the user's modules, rewritten at import;
- ``_names`` names an object after the variable the user's code put it in (``lock_a``,
  ``Account.lock``), and says where (``bank.py:12``);
- a watchdog thread ends the run on a deadlock or stall (the wait-for reasoning of
  :mod:`tracer.trace.waits`, as for scenarios), on its timeout, or when the command asks.

The host writes its events to a file; the command assembles the trace (``_trace``), which has
the shape of a scenario's, with ``program`` where a scenario trace has ``scenario``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["is_program"]


def is_program(path: str | Path) -> bool:
    """Whether ``path`` names a Python program rather than a scenario (by its suffix)."""
    return str(path).endswith((".py", ".pyw"))
