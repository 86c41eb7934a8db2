"""The ``bounded_semaphore``: options and verbs, facts, backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "bounded_semaphore"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
