"""The :class:`tracer.trace.TraceData` of a run still in memory, without its JSON text:
``tracer explore`` analyzes every schedule it runs, and writing then reading each trace would
cost more than the analysis. The engine builds it (``RunResult.trace_data``), so that the
analyses read a TraceData and never see a run."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

import orjson

from tracer._version import __version__ as _VERSION
from tracer.trace import Ev, TraceData, parse_trace_data

if TYPE_CHECKING:
    from tracer.engine._run import RunResult

_OPTS = orjson.OPT_NON_STR_KEYS
_SCALARS = frozenset((str, int, bool, type(None)))
_INF = float("inf")
_VALUE_ITEM = frozenset(("value", "item"))
_TAG_KEYS = frozenset(("seq", "ts", "actor", "op", "target", "phase", "result", "line"))
_PYTHON = platform.python_version()
# the scenario embedded last by trace_data_from_run, and its JSON: (scenario object, bytes)
_scenario_json: tuple[Any, bytes] | None = None


def _as_json(value: Any) -> Any:
    """``value`` as writing it to JSON and reading it back gives it (tuples become lists,
    keys become strings, NaN and infinities become null); scalars come back as they are."""
    cls = value.__class__
    if cls in _SCALARS or (cls is float and -_INF < value < _INF):
        return value
    return orjson.loads(orjson.dumps(value, option=_OPTS))


def _as_json_dict(d: dict[str, Any]) -> dict[str, Any]:
    """:func:`_as_json` for a dict of its own (``d`` itself when it is plain already)."""
    for k, v in d.items():
        cls = v.__class__
        if not (cls in _SCALARS or (cls is float and -_INF < v < _INF)) or \
                k.__class__ is not str:
            loaded: dict[str, Any] = orjson.loads(orjson.dumps(d, option=_OPTS))
            return loaded
    return d


def _scenario_of(result: RunResult) -> dict[str, Any]:
    """The embedded scenario, as its JSON reads back: a new dict each time, from a text made
    once per plan (an exploration analyzes thousands of runs of one plan)."""
    global _scenario_json
    scenario = result.plan.scenario
    cached = _scenario_json
    if cached is None or cached[0] is not scenario:
        cached = _scenario_json = (scenario, orjson.dumps(scenario.as_mapping(),
                                                         option=_OPTS))
    loaded: dict[str, Any] = orjson.loads(cached[1])
    return loaded


def trace_data_from_run(result: RunResult, source: str = "<run>") -> TraceData:
    """The :class:`TraceData` of a finished run, built from its records in memory: equal to
    ``parse_trace_data(result.to_json(), source)`` (the same parts, events, times rounded to
    the microsecond, payloads as JSON gives them back), at a fraction of the cost. For
    ``tracer explore``, which analyzes every schedule it runs.

    The structural checks of :func:`parse_trace_data` are left out: the engine numbers the
    events 0..N-1, names only its actors and records a blocking call before its return. What
    would not come from the engine (another numbering, an empty payload or one naming a field
    of the event itself) goes through the trace text instead, so the answer (or the error) is
    the same."""
    records = result.records
    n = len(records)
    if n and (records[0][0] != 0 or records[-1][0] != n - 1):
        return parse_trace_data(result.to_json(), source)
    t0 = result.t0
    events: list[Ev] = []
    append = events.append
    new = Ev.__new__
    last = -_INF
    for seq, ts, tag, payload in records:
        # times are made non-decreasing along seq, as the trace writer does (max() is a call)
        if ts > last:  # noqa: PLR1730
            last = ts
        ev = new(Ev)
        ev.seq = seq
        # the time as written (6 decimals) and read back: float(f"{x:.6f}") is the double
        # nearest to N / 10**6, N being x * 10**6 rounded; under 1000 s the product's error
        # cannot change N unless it is within 0.001 of a tie (those go to round(), as slow
        # as the text but the same)
        y = (last - t0) * 1e6
        if 0.0 <= y < 1e9:
            n_ = round(y)
            ev.ts = n_ / 1e6 if -0.499 < y - n_ < 0.499 else round(last - t0, 6)
        else:
            ev.ts = round(last - t0, 6)
        ev.actor = tag.actor
        ev.op = tag.op
        ev.target = tag.target
        ev.phase = tag.phase
        ev.result = tag.result
        ev.line = tag.line
        if payload is None:
            ev.value = ev.item = ev.rest = None
            append(ev)
            continue
        if not payload or not _TAG_KEYS.isdisjoint(payload):
            return parse_trace_data(result.to_json(), source)  # not the engine's payload
        value = payload.get("value")
        item = payload.get("item")
        ev.value = None if value is None else _as_json(value)
        ev.item = None if item is None else _as_json(item)
        if len(payload) > ("value" in payload) + ("item" in payload):
            ev.rest = _as_json_dict({k: v for k, v in payload.items() if k not in _VALUE_ITEM})
        else:
            ev.rest = None
        append(ev)
    meta = {"tracer_version": _VERSION, "python": _PYTHON, "started_at": result.started_at,
            "mode": result.mode, "seed": result.seed, "duration": round(result.duration, 6),
            "source": result.plan.source}
    final = result.final
    return TraceData(source, _scenario_of(result), meta, _as_json(result.actors), events,
                     {"status": result.status, "detail": result.detail},
                     (_as_json(final) if final else {}) if isinstance(final, dict) else None)
