"""The engine: instrumented primitives, the seam they call, the step compiler and the runner.

What other packages use of it (the public API, the CLI) is re-exported here; the modules
named ``_x`` are the engine's own."""

from tracer.engine._backing import UnsupportedScenario
from tracer.engine._proc import RunFault, get_context, stop_helpers
from tracer.engine._run import RunResult, check_invariants, run_plan
from tracer.engine._stops import STOPS, Stopped, shielded, stop_on_signals
from tracer.engine._tracedata import trace_data_from_run
from tracer.engine.schedule import Scheduler
from tracer.engine.schedule.replay import (
    Divergence,
    ReplayScheduler,
    first_difference,
    recorded_spins,
    recorded_steps,
)

__all__ = [
    "STOPS",
    "Divergence",
    "ReplayScheduler",
    "RunFault",
    "RunResult",
    "Scheduler",
    "Stopped",
    "UnsupportedScenario",
    "check_invariants",
    "first_difference",
    "get_context",
    "recorded_spins",
    "recorded_steps",
    "run_plan",
    "shielded",
    "stop_helpers",
    "stop_on_signals",
    "trace_data_from_run",
]
