"""The schedulers: what decides when each actor's next operation happens.

``run``, ``replay`` and ``explore`` differ only in which of these sits behind the seam; all of
them implement the one protocol of :mod:`._protocol`. Nothing outside this package asks which
one it is.
"""

from __future__ import annotations

from typing import Any

from tracer.engine.schedule._protocol import AsyncAttempt, Attempt, Scheduler
from tracer.engine.schedule.free import FreeRun


def child_scheduler(side: str | None, conn: Any) -> Scheduler:
    """The scheduler of a process actor's child: the side its parent's scheduler named
    (``Scheduler.child_side``), talking to it over ``conn``; free running when None."""
    if side is None or conn is None:
        return FreeRun()
    if side == "explore":
        from tracer.engine.schedule.explore import RemoteExplorer  # noqa: PLC0415
        return RemoteExplorer(conn)
    from tracer.engine.schedule.replay import RemoteScheduler  # noqa: PLC0415
    return RemoteScheduler(conn)


__all__ = ["AsyncAttempt", "Attempt", "FreeRun", "Scheduler", "child_scheduler"]
