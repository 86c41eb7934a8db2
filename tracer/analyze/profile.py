"""Where the run spent its time waiting: a blocking profile per primitive and per actor.

A wait is a blocking call (acquire, wait, get, put, recv, join) from its ``call`` to its
``return`` (sleeps are not waits); a call still open at the end of the trace counts until the
last event. A hold is a lock or semaphore from the acquire's ``ok`` return to the release by
the same actor (the outermost ones for an rlock taken again; a condition wait lets go of the
lock until it returns), as the shared state pass (:mod:`tracer.trace.state`) says. No
findings: numbers for people.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from tracer.analyze._model import TraceData
from tracer.trace.state import state_of

_WAIT_OPS = frozenset({"acquire", "wait", "get", "put", "recv", "join"})


def blocking_profile(data: TraceData) -> dict[str, Any]:
    """``{"primitives": {name: {...}}, "actors": {name: {...}}, "end": seconds}``.

    Per primitive: ``type``, ``waits`` (blocking calls on it), ``wait_total``, ``wait_max``,
    ``open_waits`` (calls without a return at the end), and for locks and semaphores
    ``holds``, ``hold_total``, ``hold_max``. Per actor: ``waits``, ``blocked`` (seconds
    inside blocking calls). Times are seconds."""
    state = state_of(data)
    types = state.types
    changes = state.holds.changes
    names = state.actor_names
    events = data.events
    end = float(events[-1].get("ts") or 0.0) if events else 0.0
    prims: dict[str, dict[str, Any]] = {}
    actors: dict[str, dict[str, Any]] = {a["name"]: {"waits": 0, "blocked": 0.0}
                                         for a in data.actors}
    calls: dict[str, tuple[str, float]] = {}  # actor -> (what it waits on, since)
    holding: dict[tuple[str, str], float] = {}  # (resource, actor) -> held since

    def prim(name: str, typ: str, holdable: bool) -> dict[str, Any]:
        p = prims.get(name)
        if p is None:
            p = prims[name] = {"type": typ, "waits": 0, "wait_total": 0.0, "wait_max": 0.0,
                               "open_waits": 0}
            if holdable:
                p.update(holds=0, hold_total=0.0, hold_max=0.0)
        return p

    def waited(actor: str, name: str, seconds: float, open_: bool = False) -> None:
        p = prims[name]
        p["waits"] += 1
        p["wait_total"] += seconds
        p["wait_max"] = max(p["wait_max"], seconds)
        if open_:
            p["open_waits"] += 1
        a = actors.setdefault(actor, {"waits": 0, "blocked": 0.0})
        a["waits"] += 1
        a["blocked"] += seconds

    def held(r: str, seconds: float) -> None:
        p = prims[r]
        p["holds"] += 1
        p["hold_total"] += seconds
        p["hold_max"] = max(p["hold_max"], seconds)

    for e in events:
        actor = e.actor
        if actor is None:
            continue
        op = e.op
        if op in _WAIT_OPS:
            target = e.target or "?"
            if e.phase == "call":
                if op == "join":
                    name = target
                    prim(name, "actor", False)
                elif op == "acquire":
                    name = state.resource(target)
                    prim(name, types.get(name, "lock"), state.holdable(name))
                else:
                    name = target
                    prim(name, types.get(name, "?"),
                         name in types and state.holdable(name))
                calls[actor] = (name, float(e.ts or 0.0))
            else:
                got = calls.pop(actor, None)
                if got is not None:
                    waited(actor, got[0], max(0.0, float(e.ts or 0.0) - got[1]))
        cs = changes[e.seq]
        if cs is None:
            continue
        ts = float(e.ts or 0.0)
        for c in cs:
            key = (c.resource, names[c.actor])
            kind = c.kind
            if kind in ("take", "retake"):
                if key not in holding:
                    prim(c.resource, types.get(c.resource, "lock"), True)
                    holding[key] = ts
            elif (kind == "give" and c.times <= 0) or kind in ("let_go", "free"):
                since = holding.pop(key, None)
                if since is not None:
                    held(c.resource, max(0.0, ts - since) if kind != "let_go"
                         else ts - since)
    for actor, (name, since) in calls.items():
        waited(actor, name, max(0.0, end - since), open_=True)
    for (r, _actor), since in holding.items():
        held(r, max(0.0, end - since))
    for p in prims.values():
        for k in ("wait_total", "wait_max", "hold_total", "hold_max"):
            if k in p:
                p[k] = round(p[k], 6)
    for a in actors.values():
        a["blocked"] = round(a["blocked"], 6)
    return {"primitives": prims, "actors": actors, "end": end}


def _secs(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 0.001:
        return f"{s * 1000:.1f} ms"
    if s > 0:
        return f"{s * 1e6:.0f} µs"
    return "0"


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - _width(cell))
            cells.append(pad + cell if i in right else cell + pad)
        out.append("  ".join(cells).rstrip())
    return out


def render_profile(profile: dict[str, Any]) -> list[str]:
    """The profile as text table lines: primitives with the longest total wait first, then
    the actors that were blocked, longest first."""
    prims: dict[str, dict[str, Any]] = profile.get("primitives") or {}
    actors: dict[str, dict[str, Any]] = profile.get("actors") or {}
    lines: list[str] = []
    if prims:
        rows = [["primitive", "type", "waits", "total wait", "longest wait", "holds",
                 "total hold", "longest hold"]]
        order = sorted(prims.items(), key=lambda kv: (-kv[1]["wait_total"],
                                                      -kv[1].get("hold_total", 0.0), kv[0]))
        for name, p in order:
            waits = str(p["waits"]) + (f" ({p['open_waits']} open)" if p["open_waits"] else "")
            holds = "holds" in p
            rows.append([name, p["type"], waits, _secs(p["wait_total"]), _secs(p["wait_max"]),
                         str(p["holds"]) if holds else "-",
                         _secs(p["hold_total"]) if holds else "-",
                         _secs(p["hold_max"]) if holds else "-"])
        lines += _table(rows, {2, 3, 4, 5, 6, 7})
    blocked = sorted(((n, a) for n, a in actors.items() if a["waits"]),
                     key=lambda kv: (-kv[1]["blocked"], kv[0]))
    if blocked:
        if lines:
            lines.append("")
        rows = [["actor", "waits", "time blocked"]]
        rows += [[n, str(a["waits"]), _secs(a["blocked"])] for n, a in blocked]
        lines += _table(rows, {1, 2})
    if not lines:
        lines.append("no blocking calls")
    return lines
