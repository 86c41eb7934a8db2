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

from typing import Annotated, Literal

from pydantic import Field

from tracer.prims._options import CheckContext, Name, PrimOptions, Step


class PipeSpec(PrimOptions):
    type: Literal["pipe"]
    between: Annotated[list[Name], Field(min_length=2, max_length=2)]
    duplex: bool = True


OPTIONS = PipeSpec
VERBS = ("send", "recv")
KINDS = ("thread", "process")
KIND_REFUSALS = {
    "coroutine": "'{name}' is a pipe used by coroutine actors: pipes are for thread and "
                 "process actors; coroutines talk through a queue",
}


def check(ctx: CheckContext, name: str, spec: PrimOptions) -> None:
    """``between`` names two different actors (one copy each, not a ``count`` group)."""
    assert isinstance(spec, PipeSpec)
    loc = ("primitives", name, "between")
    a, b = spec.between
    for end in (a, b):
        if end in ctx.groups and end not in ctx.kinds:
            ctx.report(loc, f"pipe end '{end}' has count: name one copy, "
                            f"e.g. '{ctx.groups[end][0]}'")
        elif end not in ctx.kinds:
            ctx.report(loc, f"pipe end '{end}' is not an actor"
                            f"{ctx.did_you_mean(end, ctx.kinds)}")
    if a == b:
        ctx.report(loc, "a pipe's two ends must be two different actors")


def check_use(ctx: CheckContext, name: str, spec: PrimOptions, step: Step,
              loc: tuple[str | int, ...], actors: tuple[str, ...]) -> None:
    """Only the two ends use a pipe; a one-way pipe sends from the first to the second."""
    assert isinstance(spec, PipeSpec)
    verb = step.verb
    sender, receiver = spec.between
    for actor in actors:
        if actor not in spec.between:
            ctx.report(loc, f"actor '{actor}' uses pipe '{name}', but the pipe is between "
                            f"{sender} and {receiver} only")
        elif not spec.duplex:
            if verb == "send" and actor != sender:
                ctx.report(loc, f"pipe '{name}' is one-way (duplex: false) from {sender} to "
                                f"{receiver}: '{actor}' can only recv")
            if verb == "recv" and actor != receiver:
                ctx.report(loc, f"pipe '{name}' is one-way (duplex: false) from {sender} to "
                                f"{receiver}: '{actor}' can only send")


# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, Op

# a send -> the recv of that item at the other end (``between`` names the two ends)
FACTS = Facts(
    ops={"send": Op(publish=("items",)), "recv": Op(take=("items",))},
    channels={"items": Channel("mail", endpoints="between")},
)


FREED_BY = {"recv": ("send",)}  # (the watchdog: what frees a waiter)


WAITS = {"recv": ("waits to receive from pipe {target}", "send on")}


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
