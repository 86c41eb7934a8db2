"""A primitive type that tracer does not have, registered by tests/test_registry_scenario.py
to prove that a type module alone adds step verbs (``count_down``, ``count_up``, each with its
own model) and an option to shared verbs (``mode`` on ``acquire`` and ``with``, for its own
primitives only), without any change to tracer/scenario."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from tracer.prims._options import (
    CheckContext,
    Name,
    PrimOptions,
    Step,
    VerbOption,
)

NAME = "gate"


class GateSpec(PrimOptions):
    type: Literal["gate"]
    count: Annotated[int, Field(ge=0, le=1000)] = 1


class CountDown(Step):
    verb: ClassVar[str] = "count_down"
    count_down: Name
    n: Annotated[int, Field(ge=1, le=1000)] = 1


class CountUp(Step):
    verb: ClassVar[str] = "count_up"
    count_up: Name
    n: Annotated[int, Field(ge=1, le=1000)] = 1


MODE = VerbOption(Literal["read", "write"], "write", "read or write")

OPTIONS = GateSpec
VERBS = ("acquire", "release", "with", "wait")
STEPS = (CountDown, CountUp)
VERB_OPTIONS = {"acquire": {"mode": MODE}, "with": {"mode": MODE}}
KINDS = ("thread", "process")


def check_use(ctx: CheckContext, name: str, spec: PrimOptions, step: Step,
              loc: tuple[str | int, ...], actors: tuple[str, ...]) -> None:
    """A count_down by more than the gate's count can never be right."""
    assert isinstance(spec, GateSpec)
    if isinstance(step, CountDown) and step.n > spec.count:
        ctx.report((*loc, "n"), f"gate '{name}' counts {spec.count}, so 'count_down' by "
                                f"{step.n} would go below zero; use n <= {spec.count}")
