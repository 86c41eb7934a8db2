"""The pipe between a process actor's child and its parent's scheduler (replay, explore)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracer.engine._seam import Abort
from tracer.engine.schedule._protocol import Scheduler

if TYPE_CHECKING:
    from collections.abc import Callable

    from tracer.engine._seam import ActorCtx, Runtime, Tag


class Remote(Scheduler):
    """A child's scheduler that asks its parent's over ``conn``: one message, one answer
    ("abort" when the run is over)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.rt: Runtime | None = None

    def attach(self, rt: Runtime, wake: Callable[[], object]) -> None:
        self.rt = rt

    def _ask(self, *msg: Any) -> Any:
        try:
            self.conn.send(msg)
            answer = self.conn.recv()
        except (EOFError, OSError):
            raise Abort from None
        if answer == "abort":
            raise Abort
        return answer

    def turn(self, actor: ActorCtx, tag: Tag) -> int:
        return int(self._ask("turn", tag.op, tag.target, tag.phase, tag.result))


def reply(conn: Any, answer: Any) -> bool:
    """Answer a process actor's question; False when its end of the pipe is gone."""
    try:
        conn.send(answer)
    except (OSError, ValueError):
        return False
    return True
