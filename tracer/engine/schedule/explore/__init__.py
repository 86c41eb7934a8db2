"""Exploration, in one place: the scheduler that runs one actor at a time and its strategies
(:mod:`.scheduler`: random walk, PCT, the systematic search's schedules, the process actors'
side), and the search over many schedules (:mod:`.search`: random/PCT ranges, DFS with DPOR
and sleep sets, one row per problem). Only the scheduler is imported here: a process actor's
child needs it, never the search."""

from tracer.engine.schedule.explore.scheduler import (
    ANY,
    PCT,
    ExploreScheduler,
    Pending,
    Point,
    RandomWalk,
    RemoteExplorer,
    Strategy,
    Systematic,
    dependent,
    make_scheduler,
    make_strategy,
    object_groups,
    operation_object,
    schedule_seed,
    serve_explore,
    try_or_park,
)

__all__ = ["ANY", "PCT", "ExploreScheduler", "Pending", "Point", "RandomWalk", "RemoteExplorer",
           "Strategy", "Systematic", "dependent", "make_scheduler", "make_strategy",
           "object_groups", "operation_object", "schedule_seed", "serve_explore", "try_or_park"]
