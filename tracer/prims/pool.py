"""``pool``: a pool of workers that runs the actors given ``pool: NAME``
(``concurrent.futures.ThreadPoolExecutor``, ``multiprocessing.Pool``): its options and verbs,
its facts, its backings."""

from __future__ import annotations

from typing import Any

from tracer.prims._shell import Env, Prim, Unsupported

NAME = "pool"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Literal

from pydantic import Field

from tracer.prims._options import MAX_WORKERS, CheckContext, PrimOptions, a_


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

from tracer.prims._facts import Facts

# a pool's order (a task's end -> the next task on its worker) is its actors' own: the pass
# derives it from the actors' ``pool``, pid and tid, and the pool's ``workers`` option
FACTS = Facts()


# --- backings (read by tracer.engine) -------------------------------------------------------


class Pool(Prim):
    """A pool of workers: actors with ``pool: NAME`` are its tasks."""

    ptype = "pool"

    def __init__(self, name: str, real: Any, workers: int) -> None:
        super().__init__(name, real)  # a ThreadPoolExecutor; a process pool's is made later
        self.workers = workers

    def abort(self) -> None:
        """The runner stops pools itself, after their tasks have seen the abort."""


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The pool of ``spec.workers``: a ThreadPoolExecutor, or a process pool that the runner
    starts once its first task comes (``kind`` process)."""
    if kind == "process":
        return Pool(name, None, spec.workers)
    if kind == "coroutine":
        raise Unsupported("a pool runs threads or processes, not coroutines")
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415
    executor = ThreadPoolExecutor(spec.workers, thread_name_prefix=f"tracer-pool:{name}")
    return Pool(name, executor, spec.workers)
