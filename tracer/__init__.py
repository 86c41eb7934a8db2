"""tracer: make deadlocks and races in Python concurrent code visible and repeatable.

The public API (:mod:`tracer.api`)::

    import tracer
    result = tracer.run("scenarios/deadlock.yaml")
    result.status          # "deadlock"
    result.write("traces/deadlock.json")
    report = tracer.analyze("traces/deadlock.json")
    replay = tracer.replay("traces/deadlock.json")
    found = tracer.explore("scenarios/deadlock.yaml", strategy="dfs")

and, as before, ``run_plan(load_scenario(path))``.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from tracer._version import __version__

if TYPE_CHECKING:
    from tracer.api import analyze, explore, replay, run
    from tracer.engine import RunResult, run_plan
    from tracer.scenario import Plan, ScenarioError, load_scenario, load_scenario_text
    from tracer.trace import Trace, TraceError, load_trace

# what each public name is imported from, when it is first used: importing ``tracer`` (as
# every process of a run does: a process actor, a traced program's host and children) loads
# no more than the part it uses
_FROM = {"analyze": "tracer.api", "explore": "tracer.api", "replay": "tracer.api",
         "run": "tracer.api", "RunResult": "tracer.engine", "run_plan": "tracer.engine",
         "Plan": "tracer.scenario", "ScenarioError": "tracer.scenario",
         "load_scenario": "tracer.scenario", "load_scenario_text": "tracer.scenario",
         "Trace": "tracer.trace", "TraceError": "tracer.trace", "load_trace": "tracer.trace"}

__all__ = [
    "Plan",
    "RunResult",
    "ScenarioError",
    "Trace",
    "TraceError",
    "__version__",
    "analyze",
    "explore",
    "load_scenario",
    "load_scenario_text",
    "load_trace",
    "replay",
    "run",
    "run_plan",
]

_API = frozenset(("analyze", "explore", "replay", "run"))  # (functions, never modules)


class _Package(types.ModuleType):
    """``tracer.analyze`` is the API's function, and also the name of a subpackage. Python
    sets a submodule as an attribute of its package when it is first imported, which would
    replace the function; it is imported lazily (see :mod:`tracer.api`), so this refuses that
    one assignment. The subpackage stays what ``from tracer.analyze import ...`` and
    ``sys.modules`` give."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


def __getattr__(name: str) -> Any:
    where = _FROM.get(name)
    if where is None:
        raise AttributeError(f"module 'tracer' has no attribute {name!r}")
    import importlib  # noqa: PLC0415 (loaded when first used)
    value = getattr(importlib.import_module(where), name)
    if name not in _API:
        globals()[name] = value
    return value


sys.modules[__name__].__class__ = _Package
