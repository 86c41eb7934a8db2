"""Declared invariants checked on the final state, and the write that broke each one."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from tracer._show import show
from tracer.analyze._model import Finding, TraceData, where

COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne, ">=": operator.ge, ">": operator.gt,
}


def _fmt(value: Any) -> str:
    return show(value)


def final_state(data: TraceData, wanted: set[str] | None = None) -> dict[str, Any]:
    """The shared variables at the end: the trace's ``final``, else replayed from the initial
    values and the write/append events."""
    if data.final is not None:
        return data.final
    state: dict[str, Any] = {}
    for k, v in (data.scenario.get("shared") or {}).items():
        state[k] = list(v) if isinstance(v, list) else v
    for e in data.events:
        op = e.op
        if op == "write":
            var = e.target
            if isinstance(var, str) and (wanted is None or var in wanted):
                state[var] = e.value
        elif op == "append":
            var = e.target
            if isinstance(var, str) and (wanted is None or var in wanted):
                cur = state.get(var)
                if not isinstance(cur, list):
                    cur = state[var] = []
                cur.append(e.item)
    return state


def find_invariant_violations(data: TraceData) -> list[Finding]:
    """One ``invariant`` finding per declared invariant that the final state breaks."""
    invs = [i for i in data.scenario.get("invariants") or ()
            if isinstance(i, dict) and isinstance(i.get("var"), str) and i.get("op") in COMPARE]
    if not invs:
        return []
    wanted = {i["var"] for i in invs}
    final = final_state(data, wanted)
    failed = []
    for inv in invs:
        var, op, want = inv["var"], inv["op"], inv.get("value")
        value = final.get(var)
        try:
            holds = bool(COMPARE[op](value, want))
        except TypeError:
            holds = False
        if not holds:
            failed.append((inv, value))
    if not failed:
        return []
    last: dict[str, dict[str, Any]] = {}
    bad = {inv["var"] for inv, _ in failed}
    for e in data.events:
        if e.op in ("write", "append") and e.target in bad:
            last[e.target] = e
    out = []
    for inv, value in failed:
        var, op, want = inv["var"], inv["op"], inv.get("value")
        head = f"invariant {var} {op} {_fmt(want)} fails: {var} = {_fmt(value)} at the end"
        if var not in final:
            head = f"invariant {var} {op} {_fmt(want)} fails: {var} has no value at the end"
        w = last.get(var)
        if w is None:
            msg = f"{head}; no actor wrote it, so its initial value already breaks it"
            out.append(Finding("invariant", (), (var,), msg, (),
                               {"var": var, "op": op, "value": want, "final": value}))
            continue
        if w["op"] == "append":
            did = f"appended {_fmt(w.get('item'))} to it"
        elif w.get("atomic") is True and "old" in w:  # an atomic add
            did = f"atomically set it to {_fmt(w.get('value'))} (was {_fmt(w.get('old'))})"
        else:
            did = f"set it to {_fmt(w.get('value'))}"
        at = where(data, w["seq"])
        msg = (f"{head}; the last write, seq {w['seq']} by {w['actor']}"
               f"{f' ({at})' if at else ''}, {did}")
        out.append(Finding("invariant", (w["actor"],), (var,), msg, (w["seq"],),
                           {"var": var, "op": op, "value": want, "final": value,
                            "last_write": {"seq": w["seq"], "actor": w["actor"],
                                           "op": w["op"]}}))
    return out
