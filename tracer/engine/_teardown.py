"""The teardown of a run: close it, stop every actor through the host of its kind (aborting
what blocks inside a real primitive, joining, killing what will not stop), close the
primitives and stop the Manager. No thread or process of the run outlives it."""

from __future__ import annotations

import time

from tracer.engine._compile import copy_value
from tracer.engine._state import STOP_GRACE, RunState


def teardown(run: RunState) -> list[str]:
    """Close the run and wait for every actor; the names of any that would not stop."""
    run.rt.close()
    run.scheduler.closing()
    hosts = run.hosts
    for host in hosts.values():
        host.close()  # (the abort flag that process children poll)
    # coroutines first (their cancellation is their abort, done in their loop), then what
    # blocks threads and processes inside real primitives is woken, then those are joined
    stuck_tasks = hosts["coroutine"].stop(time.monotonic() + STOP_GRACE)
    for p in run.prims.values():
        p.abort()  # wake what is blocked inside a real primitive and cannot poll
    end = time.monotonic() + STOP_GRACE
    stuck = hosts["thread"].stop(end)
    stuck += hosts["process"].stop(end)
    stop_manager(run)
    for p in run.prims.values():
        p.close()
    return stuck + stuck_tasks


def stop_manager(run: RunState) -> None:
    """Take the final values of the shared variables from the Manager, then stop it."""
    if run.manager is None:
        return
    try:
        run.shared = copy_value(run.shared)  # the final values, before it goes
    except (OSError, EOFError) as exc:
        run.shared = {"(lost)": f"the Manager process ended early: {exc}"}
    run.manager.shutdown()
