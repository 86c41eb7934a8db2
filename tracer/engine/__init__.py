"""The engine: instrumented primitives, the seam they call, the step compiler and the runner."""

from tracer.engine._backing import UnsupportedScenario
from tracer.engine._run import RunResult, check_invariants, run_plan
from tracer.engine.schedule import Scheduler

__all__ = ["RunResult", "Scheduler", "UnsupportedScenario", "check_invariants", "run_plan"]
