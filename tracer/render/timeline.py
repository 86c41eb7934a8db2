"""``tracer show``: a trace as a readable timeline, one line per event.

A blocking call prints when it starts (``acquire B …``) and when it returns, with how long the
actor waited; a call that never returned is listed at the end as still blocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracer.trace import Event, Trace

_WAITED = 0.001  # waits shorter than this are not worth a note


def _value(v: Any) -> str:
    text = repr(v) if not isinstance(v, str) else v
    return text if len(text) <= 40 else text[:37] + "..."


def describe(e: Event) -> str:
    """The operation of one event in words, without actor and time."""
    if e.actor is None:  # engine events
        who = f" [{', '.join(e.actors)}]" if e.actors else ""
        return f"*** {e.op.upper()}{who}: {e.detail or ''}"
    text = e.op
    if e.target:
        text += f" {e.target}"
    if e.op == "spawn":
        text = f"start {e.target}"
    if e.op == "log":
        text = f"log: {e.detail}"
    if e.op in ("read", "write") and "value" in e.model_fields_set:
        text += f" = {_value(e.value)}" if e.op == "write" else f" -> {_value(e.value)}"
    if e.op == "sleep" and e.phase == "call":
        text += f" {e.value}s"
    if e.item is not None and (e.phase == "call" or e.op == "append") and \
            e.op in ("put", "send", "append"):
        text += f" {_value(e.item)}"
    if e.phase == "call":
        text += " ..."
    elif e.phase == "return":
        text += f" -> {e.result}"
        if e.item is not None:
            text += f" {_value(e.item)}"
    if e.op == "end":
        text = f"end ({e.result})"
    if e.error:
        text += f"  !! {e.error}"
    return text


def timeline(trace: Trace, actor: str | None = None) -> Iterator[str]:
    """Lines of the timeline of ``trace`` (optionally one actor's events only)."""
    sc = trace.scenario.get("name", "?")
    n = len(trace.events)
    end = trace.events[-1].ts if trace.events else 0.0
    yield (f"{sc}: {trace.outcome.status} — {n} events over {end:.6f} s "
           f"({trace.meta.mode}, {trace.meta.started_at})")
    if trace.outcome.detail:
        yield f"  {trace.outcome.detail}"
    width = max([len(a.name) for a in trace.actors] + [5])
    yield f"{'seq':>6}  {'time (s)':>10}  {'actor':<{width}}  event"
    open_calls: dict[tuple[str, str, str | None], Event] = {}
    for e in trace.events:
        if actor is not None and e.actor not in (actor, None):
            continue
        note = ""
        if e.actor is not None and e.phase == "call":
            open_calls[(e.actor, e.op, e.target)] = e
        elif e.actor is not None and e.phase == "return":
            start = open_calls.pop((e.actor, e.op, e.target), None)
            if start is not None and e.ts - start.ts >= _WAITED and e.op != "sleep":
                note = f"   (waited {e.ts - start.ts:.3f} s since seq {start.seq})"
        who = e.actor if e.actor is not None else "-"
        yield f"{e.seq:>6}  {e.ts:>10.6f}  {who:<{width}}  {describe(e)}{note}"
    if open_calls:
        yield "still blocked at the end:"
        for (who, op, target), e in sorted(open_calls.items(), key=lambda kv: kv[1].seq):
            what = f"{op} {target}" if target else op
            yield (f"  {who}: {what} since {e.ts:.6f} s (seq {e.seq}), "
                   f"{end - e.ts:.3f} s before the end")
