"""``pipe``: a connection between two actors (``multiprocessing.Pipe``): its options and
verbs, its facts, its backings."""

from __future__ import annotations

from multiprocessing import Pipe as mp_pipe
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from tracer.prims._shell import Abort, ActorFailure, Env, OpTags, Prim, Tally, Unsupported

if TYPE_CHECKING:
    from tracer.engine._seam import ActorCtx

NAME = "pipe"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------


class Pipe(Prim):
    """A pipe: ``real`` is unused; each end actor has its own connection in ``ends``."""

    ptype = "pipe"

    def __init__(self, name: str, ends: dict[str, Connection]) -> None:
        super().__init__(name, None)
        self.ends = ends
        self.sent = Tally()  # by sender, tallied before the real send
        self.received = Tally()  # by receiver, tallied after the real recv

    def send(self, a: ActorCtx, t: OpTags, item: Any) -> None:
        # a send of a small item does not block (the OS pipe buffers it): not a wait
        a.emit(t.call, {"item": item})
        self.sent.add(a.name)
        try:
            self.ends[a.name].send(item)
        except (OSError, ValueError) as exc:
            if a.rt.closed:
                raise Abort from None
            a.waiting = None
            msg = f"{a.name} could not send on pipe {self.name}: {exc}"
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
        a.waiting = None
        a.emit(t.ok, None)

    def recv(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        a.block(self, "recv", timeout, t.call)
        conn = self.ends[a.name]
        try:
            ok = a.rt.scheduler.wait(a, conn.poll, timeout)
            item = conn.recv() if ok else None
            if ok:
                self.received.add(a.name)
        except (OSError, EOFError) as exc:
            if a.rt.closed:
                raise Abort from None
            a.waiting = None
            msg = f"{a.name} could not receive on pipe {self.name}: {exc}"
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
        a.waiting = None
        if ok:
            a.emit(t.ok, {"item": item})
        else:
            a.emit(t.timeout, None)

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        # more was sent to this end than it has received: the data is there or in its hands
        other = next((n for n in self.ends if n != actor), actor)
        return self.sent.of(other) > self.received.of(actor)

    def close(self) -> None:
        for conn in self.ends.values():
            try:
                conn.close()
            except OSError:
                pass


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The pipe between ``spec.between``'s two actors: duplex, or one way from the first to
    the second (``multiprocessing.Pipe``; a process run's from its context)."""
    if kind == "coroutine":
        raise Unsupported("a pipe joins threads or processes, not coroutines")
    pipe = env.mp.Pipe if kind == "process" else mp_pipe
    a, b = spec.between
    if spec.duplex:
        ca, cb = pipe(duplex=True)
    else:
        cb, ca = pipe(duplex=False)  # (receive end, send end): between[0] sends
    return Pipe(name, {a: ca, b: cb})
