"""tracer: make deadlocks and races in Python concurrent code visible and repeatable.

The public API::

    from tracer import load_scenario, run_plan
    result = run_plan(load_scenario("scenarios/deadlock.yaml"))
    result.status          # "deadlock"
    result.write("traces/deadlock.json")
"""

from __future__ import annotations

from tracer._version import __version__
from tracer.engine import RunResult, run_plan
from tracer.scenario import Plan, ScenarioError, load_scenario, load_scenario_text
from tracer.trace import Trace, TraceError, load_trace

__all__ = [
    "Plan",
    "RunResult",
    "ScenarioError",
    "Trace",
    "TraceError",
    "__version__",
    "load_scenario",
    "load_scenario_text",
    "load_trace",
    "run_plan",
]
