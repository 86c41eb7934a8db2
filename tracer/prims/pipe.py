"""The ``pipe``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "pipe"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Literal  # noqa: E402

from pydantic import Field  # noqa: E402

from tracer.prims._options import CheckContext, Name, PrimOptions, Step  # noqa: E402


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



# --- backings (read by tracer.engine) -------------------------------------------------------
