"""The ``pool``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "pool"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Any, Literal  # noqa: E402

from pydantic import Field  # noqa: E402

from tracer.prims._options import MAX_WORKERS, CheckContext, PrimOptions, a_  # noqa: E402


class PoolSpec(PrimOptions):
    type: Literal["pool"]
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)]
    of: Literal["thread", "process"] = "thread"


OPTIONS = PoolSpec
VERBS: tuple[str, ...] = ()  # no step acts on a pool: actors run on it (their `pool:` field)
HOSTS_ACTORS = True
MISUSE_HINT = " (a pool runs actors: give an actor 'pool: {name}' instead)"


def check_member(ctx: CheckContext, name: str, spec: PrimOptions, actor: Any,
                 loc: tuple[str | int, ...]) -> None:
    """An actor run by the pool is of the pool's kind (``of``)."""
    assert isinstance(spec, PoolSpec)
    if spec.of != actor.kind:
        ctx.report((*loc, "pool"), f"pool '{name}' runs {spec.of} tasks, but actor "
                                   f"'{actor.name}' is {a_(actor.kind)}")


def fixed_kinds(spec: PrimOptions) -> frozenset[str]:
    """A pool's backing serves its ``of`` kind, whoever names it."""
    assert isinstance(spec, PoolSpec)
    return frozenset({spec.of})


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
