"""The one place where a primitive's real backing is chosen: by its type's module in the
registry (``tracer.prims``), for the kind of the actors that use it.

The flavour (thread / process / coroutine) comes from the kinds of the actors that use the
primitive (``Plan.flavour``, decided when the scenario is checked). A process flavour's
holders and tallies move into shared memory, where every process of the run sees them.
"""

from __future__ import annotations

from typing import Any

from tracer.engine._proc import Shared, share_counts
from tracer.prims import prim_type
from tracer.prims._shell import Env, Prim, Unsupported
from tracer.scenario import Plan


class UnsupportedScenario(Exception):
    """The scenario is valid but needs something this engine cannot run yet."""


def make_primitives(plan: Plan, mpctx: Any = None, shared: Shared | None = None,
                    manager: Any = None) -> dict[str, Prim]:
    """Build every primitive of ``plan`` on its real backing."""
    specs = plan.scenario.primitives
    out: dict[str, Prim] = {}
    env = Env(mpctx, manager, tuple(a.name for a in plan.actors))
    # those built on another first (a condition on its lock)
    order = sorted(specs, key=lambda n: bool(prim_type(specs[n].type).also_uses(specs[n])))
    for name in order:
        spec = specs[name]
        flavour = plan.flavour.get(name, "thread")
        backing = prim_type(spec.type).part("backing")
        if backing is None:
            raise UnsupportedScenario(f"primitive type {spec.type!r} has no backing")
        try:
            prim = backing(flavour, name, spec, out, env)
        except Unsupported as exc:
            raise UnsupportedScenario(f"{spec.type} {name!r}: {exc}") from None
        if flavour == "process":
            assert shared is not None
            share_counts(prim, shared)
        out[name] = prim
    return out
