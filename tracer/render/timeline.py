"""``tracer show``: a trace as a readable timeline, one line per event.

A blocking call prints when it starts (``acquire B …``) and when it returns, with how long the
actor waited; a call that never returned is listed at the end as still blocked. A ``compute``
(CPU work, not a wait) prints its units and how long it took; one still running at the end
is listed as still computing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracer.trace import TraceData
from tracer.trace.state import is_atomic

_WAITED = 0.001  # waits shorter than this are not worth a note


def _value(v: Any) -> str:
    text = repr(v) if not isinstance(v, str) else v
    return text if len(text) <= 40 else text[:37] + "..."


def describe(e: Any) -> str:
    """The operation of one event (an :class:`~tracer.trace.Ev`, or its JSON object as a
    dict) in words, without actor and time."""
    get = e.get
    op = get("op")
    target = get("target")
    phase = get("phase")
    item = get("item")
    if get("actor") is None:  # engine events
        actors = get("actors")
        who = f" [{', '.join(actors)}]" if actors else ""
        return f"*** {op.upper()}{who}: {get('detail') or ''}"
    text = str(op)
    if target:
        text += f" {target}"
    if op == "spawn":
        text = f"start {target}"
    if op == "log":
        text = f"log: {get('detail')}"
    if op in ("read", "write") and "value" in e:
        value = _value(get("value"))
        text += f" = {value}" if op == "write" else f" -> {value}"
    if op == "sleep" and phase == "call":
        text += f" {get('value')}s"
    if op == "compute" and phase == "call":
        text += f" {get('value')} units"
    if item is not None and (phase == "call" or op == "append") and \
            op in ("put", "send", "append"):
        text += f" {_value(item)}"
    if is_atomic(e):  # an atomic access; an atomic add's write says what it replaced
        text += f" (atomic, was {_value(get('old'))})" if "old" in e else " (atomic)"
    if get("mode") is not None:  # (a mode its type's acquire records: an rwlock's read)
        text += f" ({get('mode')})"
    if isinstance(get("n"), int) and get("n") != 1:  # (an amount: a latch's count_down by 2)
        text += f" by {get('n')}"
    if phase == "call":
        text += " ..."
    elif phase == "return":
        text += f" -> {get('result')}"
        if item is not None:
            text += f" {_value(item)}"
    if op == "end":
        text = f"end ({get('result')})"
    if get("error"):
        text += f"  !! {get('error')}"
    return text


def timeline(trace: TraceData, actor: str | None = None) -> Iterator[str]:
    """Lines of the timeline of ``trace`` (optionally one actor's events only), made one at
    a time as they are printed."""
    sc = trace.scenario.get("name", "?")
    events = trace.events
    n = len(events)
    end = events[-1].get("ts") if events else 0.0
    meta = trace.meta
    yield (f"{sc}: {trace.outcome.get('status')} — {n} events over {end:.6f} s "
           f"({meta.get('mode', '?')}, {meta.get('started_at', '?')})")
    detail = trace.outcome.get("detail")
    if detail:
        yield f"  {detail}"
    width = max([len(str(a.get("name"))) for a in trace.actors] + [5])
    # a column of each event's YAML line, when the trace has them (older traces do not)
    lined = any(e.get("line") is not None for e in events)
    if lined:
        yield f"lines: of {meta.get('source') or 'the scenario file'}"
    head = f"{'line':>5}  " if lined else ""
    yield f"{'seq':>6}  {'time (s)':>10}  {'actor':<{width}}  {head}event"
    # calls paired with their returns as the reader pairs them (the same actor, op and
    # target), as the events are printed: nothing is kept per event
    pending: dict[tuple[Any, Any, Any], Any] = {}
    for e in events:
        who = e.get("actor")
        phase = e.get("phase")
        start = None
        if who is not None and phase is not None:
            key = (who, e.get("op"), e.get("target"))
            if phase == "call":
                pending[key] = e
            else:
                start = pending.pop(key, None)
        if actor is not None and who not in (actor, None):
            continue
        note = ""
        ts = e.get("ts")
        if who is not None and phase == "return":
            op = e.get("op")
            if start is not None and ts - start.get("ts") >= _WAITED and op != "sleep":
                # (a compute is CPU work, not a wait: how long it took is the point of it)
                did = "took" if op == "compute" else "waited"
                note = f"   ({did} {ts - start.get('ts'):.3f} s since seq {start.get('seq')})"
        line = f"{e.get('line') or '-':>5}  " if lined else ""
        yield (f"{e.get('seq'):>6}  {ts:>10.6f}  {who if who is not None else '-':<{width}}  "
               f"{line}{describe(e)}{note}")
    still = sorted((e for e in pending.values() if actor is None or e.get("actor") == actor),
                   key=lambda e: e.get("seq"))
    for title, group in (
            ("still blocked at the end:", [e for e in still if e.get("op") != "compute"]),
            ("still computing at the end:", [e for e in still if e.get("op") == "compute"])):
        if not group:
            continue
        yield title
        for e in group:
            who, op, target = e.get("actor"), e.get("op"), e.get("target")
            what = f"{op} {target}" if target else op
            if op == "compute":
                what += f" {e.get('value')} units"
            yield (f"  {who}: {what} since {e.get('ts'):.6f} s (seq {e.get('seq')}), "
                   f"{end - e.get('ts'):.3f} s before the end")
