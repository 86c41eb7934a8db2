"""The ``condition``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "condition"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Literal  # noqa: E402

from tracer.prims._options import CheckContext, Name, PrimOptions, a_  # noqa: E402


class ConditionSpec(PrimOptions):
    type: Literal["condition"]
    lock: Name | None = None


OPTIONS = ConditionSpec
VERBS = ("acquire", "release", "with", "wait", "notify", "notify_all")


def check(ctx: CheckContext, name: str, spec: PrimOptions) -> None:
    """``lock`` must name a lock or an rlock of the scenario."""
    assert isinstance(spec, ConditionSpec)
    lname = spec.lock
    if lname is None:
        return
    loc = ("primitives", name, "lock")
    prims = ctx.primitives
    if lname not in prims:
        ctx.report(loc, f"condition lock '{lname}' is not a primitive"
                        f"{ctx.did_you_mean(lname, prims)}")
    elif prims[lname].type not in ("lock", "rlock"):
        ctx.report(loc, f"condition lock '{lname}' is {a_(prims[lname].type)}; it must be a "
                        "lock or rlock")


def also_uses(spec: PrimOptions) -> tuple[str, ...]:
    """A step on a condition also takes or waits for its lock."""
    assert isinstance(spec, ConditionSpec)
    return (spec.lock,) if spec.lock is not None else ()


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
