"""The ``pool``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "pool"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Facts  # noqa: E402

# a pool's order (a task's end -> the next task on its worker) is its actors' own: the pass
# derives it from the actors' ``pool``, pid and tid, and the pool's ``workers`` option
FACTS = Facts()


# --- backings (read by tracer.engine) -------------------------------------------------------
