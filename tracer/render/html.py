"""``tracer report``: one self-contained HTML page of a trace and its analysis.

Design: the page is static HTML (the header, the findings, the graphs drawn by Graphviz as
inline SVG) plus one JSON document, embedded in a ``<script type="application/json">``, from
which a small inline script draws the timeline and the moment view. Nothing is fetched: no
CDN, no font, no image; the page works from ``file://`` with no network.

The JSON is compact, columns of numbers rather than objects, so that a large trace stays a
small file (about 40 bytes an event): every event once (seq, time, actor, its text, its
scenario line), the calls paired with their returns (blocked, sleeping or computing
intervals), the holds (from the shared state pass's hold log, :mod:`tracer.trace.state`, so
a condition's wait lets go of its lock as the analyses say), and the happens-before arrows as
the Chrome export derives them (:mod:`tracer.render.chrome`). Who holds and who waits for what
after event ``seq`` is then an interval test the script does as the slider moves: an
interval ``[begin, end)`` is open after event s when ``begin <= s < end``. At the last event
the engine's verdict (the deadlock's cycle, the stalled actors) marks the view, as in the
wait-for graph of :func:`tracer.analyze.wait_for_graph`.

All text from the trace reaches the page through the JSON (read by the script with
``textContent``, never as markup) or through :func:`html.escape`: a name may contain anything.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import PurePath
from typing import Any

from tracer.analyze import Report, TraceData, lock_order_graph, wait_for_graph
from tracer.render.chrome import happens_before
from tracer.render.graphs import lock_order_dot, svg_of, wait_for_dot
from tracer.render.timeline import describe
from tracer.trace.state import state_of

_TIMED = ("sleep", "compute")


def _actors(data: TraceData) -> list[dict[str, Any]]:
    """The actors in trace order, with any a hand-made trace names in its events only."""
    out = [{"name": a["name"], "kind": a.get("kind", "?"), "status": a.get("status", "?")}
           for a in data.actors if isinstance(a.get("name"), str)]
    names = {a["name"] for a in out}
    for e in data.events:
        a = e.get("actor")
        if isinstance(a, str) and a not in names:
            names.add(a)
            out.append({"name": a, "kind": "?", "status": "?"})
    return out


def report_model(data: TraceData, report: Report) -> dict[str, Any]:
    """The JSON document the page's script reads (see the module's docstring)."""
    actors = _actors(data)
    index = {a["name"]: i for i, a in enumerate(actors)}
    events = data.events
    ev: list[list[Any]] = []
    for e in events:
        line = e.get("line")
        ts = e.get("ts")
        ev.append([round(float(ts), 6) if isinstance(ts, (int, float)) else 0.0,
                   index.get(e.get("actor"), -1), describe(e),
                   line if isinstance(line, int) and not isinstance(line, bool) else 0])

    state = state_of(data)
    calls = state.calls
    # intervals: [actor, kind (0 blocked, 1 sleep, 2 compute), call seq, return seq or -1,
    # target]
    iv: list[list[Any]] = []
    for ret, call in enumerate(calls.call_of):
        if call >= 0:
            iv.append(_interval(events[call], index, call, ret))
    iv.extend(_interval(events[call], index, call, -1) for call in calls.open)
    iv.sort(key=lambda x: x[2])

    # holds: [actor, resource index, taken at seq, given back at seq or -1]
    resources: dict[str, int] = {}
    holds: list[list[int]] = []
    open_holds: dict[tuple[int, str], list[int]] = {}
    names = state.actor_names
    for seq, cs in enumerate(state.holds.changes):
        for c in cs or ():
            key = (index.get(names[c.actor], -1), c.resource)
            if c.kind in ("take", "retake"):
                if key not in open_holds:
                    r = resources.setdefault(c.resource, len(resources))
                    h = [key[0], r, seq, -1]
                    holds.append(h)
                    open_holds[key] = h
            elif (c.kind == "give" and c.times <= 0) or c.kind in ("free", "let_go"):
                h2 = open_holds.pop(key, None)
                if h2 is not None:
                    h2[3] = seq

    # the happens-before arrows, exactly as the Chrome export draws them
    hb_kinds: dict[str, int] = {}
    hb = [[s, d, hb_kinds.setdefault(k, len(hb_kinds))] for s, d, k in happens_before(data)]

    end = wait_for_graph(data)  # the engine's verdict at the end: cycle, stalled, hidden waits
    types = dict(state.types)
    for held_name in resources:
        types.setdefault(held_name, "lock")
    meta = data.meta
    source = meta.get("source")
    return {
        "scenario": str(data.scenario.get("name", "trace")),
        "source": str(source) if source else None,
        "file": PurePath(str(source)).name if source else None,
        "status": str(data.outcome.get("status", "?")),
        "detail": str(data.outcome.get("detail") or ""),
        "actors": actors,
        "resources": list(resources),
        "types": types,
        "ev": ev,
        "iv": iv,
        "holds": holds,
        "hb": hb,
        "hbKinds": list(hb_kinds),
        "findings": [{"kind": f.kind, "severity": f.severity, "message": f.message,
                      "actors": list(f.actors), "objects": list(f.objects),
                      "events": [s for s in f.events if 0 <= s < len(events)]}
                     for f in report.findings],
        "end": {"cycle": sorted(end.cycle), "stalled": sorted(end.stalled),
                "waits": [list(w) for w in end.waits]},
    }


def _interval(call: Any, index: dict[str, int], begin: int, end: int) -> list[Any]:
    op = call.get("op")
    kind = _TIMED.index(op) + 1 if op in _TIMED else 0
    target = call.get("target")
    return [index.get(call.get("actor"), -1), kind, begin, end,
            target if isinstance(target, str) else ""]


def _json_for_script(doc: Any) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` that could end the element."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PROLOG = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->", re.S)
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def _inline_svg(svg: str) -> str:
    """Graphviz's SVG as an element of the page: no XML prolog, DOCTYPE or comments (they
    name the W3C's addresses), no namespace declarations (HTML gives them); its own size, shrunk
    to fit the page (CSS)."""
    svg = _XMLNS.sub("", _PROLOG.sub("", svg)).strip()
    return svg.replace("<svg ", '<svg class="graph-svg" ', 1)


def _graph_section(title: str, dot: str, gid: str) -> str:
    svg = svg_of(dot)
    if svg is not None:
        body = f'<div class="graph-box">{_inline_svg(svg)}</div>'
    else:
        body = ('<p class="note">Graphviz\'s <code>dot</code> is not installed here, so the '
                "graph is shown as DOT text (install Graphviz and run the report again to see "
                f"it drawn).</p><pre class=\"dot\">{html.escape(dot)}</pre>")
    return f'<section id="{gid}"><h2>{html.escape(title)}</h2>{body}</section>'


def render_html(data: TraceData, report: Report) -> str:
    """The whole page for ``data`` and its analysis ``report``: a pure function of the two
    (and of whether Graphviz's ``dot`` is installed, for the graphs)."""
    model = report_model(data, report)
    name = model["scenario"]
    graphs = [_graph_section("Wait-for graph at the end of the trace",
                             wait_for_dot(wait_for_graph(data),
                                          f"wait-for graph — {name} — end of trace "
                                          f"({model['status']})"), "graph-wait-for")]
    lo = lock_order_graph(data)
    if lo.edges:
        graphs.append(_graph_section("Lock-order graph (which lock was taken while holding "
                                     "which)", lock_order_dot(lo, f"lock order — {name}"),
                                     "graph-lock-order"))
    else:
        graphs.append('<section id="graph-lock-order"><h2>Lock-order graph</h2><p class="note">'
                      "No lock was taken while another was held: no lock order to draw.</p>"
                      "</section>")
    n = len(report.findings)
    counts = ", ".join(f"{c} {k}" for k, c in _counts(report).items())
    summary = f"{n} finding{'s' if n != 1 else ''} ({counts})" if n else "no findings"
    source = model["source"]
    where = f" · scenario <code>{html.escape(source)}</code>" if source else ""
    return _PAGE.format(
        title=html.escape(f"tracer report — {name}"),
        name=html.escape(name),
        status=html.escape(model["status"]),
        status_class="ok" if model["status"] == "ok" else "bad",
        detail=html.escape(model["detail"]),
        summary=html.escape(summary),
        where=where,
        n_events=len(data.events),
        n_actors=len(model["actors"]),
        graphs="\n".join(graphs),
        css=_CSS,
        data=_json_for_script(model),
        script=_SCRIPT,
    )


def _counts(report: Report) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in report.findings:
        out[f.kind] = out.get(f.kind, 0) + 1
    return out


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{name} <span class="status {status_class}">{status}</span></h1>
<p class="sub">{n_events} events · {n_actors} actors · {summary}{where}</p>
<p class="detail">{detail}</p>
</header>
<main>
<section id="findings"><h2>Findings</h2><p class="help">Click a finding to highlight its
events in the timeline and the event list, and to move the moment to its last event
(a deadlock or stall: to the end, where the engine found it).</p>
<ol id="finding-list"></ol></section>
<section id="timeline-section"><h2>Timeline</h2>
<p class="help">One row per actor, in event order (seq). <span class="key hold"></span> holding
<span class="key blocked"></span> blocked <span class="key sleep"></span> sleeping
<span class="key compute"></span> computing; arrows: happens-before between actors. Click an
event to move the moment there.</p>
<div id="timeline"></div></section>
<section id="moment"><h2>At a moment</h2>
<div class="slider-row"><label for="seq">after event</label>
<input type="range" id="seq" min="0" max="0" value="0">
<output id="seq-label"></output></div>
<p id="moment-event"></p>
<div class="moment-grid"><table id="moment-table"><thead><tr><th>actor</th><th>state</th>
<th>holds</th><th>waits for</th></tr></thead><tbody></tbody></table>
<div id="moment-graph"></div></div></section>
{graphs}
<section id="events-section"><h2>Events</h2>
<div id="events"><table><thead><tr><th>seq</th><th>time (s)</th><th>actor</th><th>event</th>
<th>line</th></tr></thead><tbody id="event-rows"></tbody></table></div></section>
</main>
<footer>Made by <code>tracer report</code>: one file, no network needed.</footer>
<script id="trace-data" type="application/json">{data}</script>
<script>{script}</script>
</body>
</html>
"""

_CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#ffffff; --panel:#f6f8fb;
  --hold:#3f9b5b; --blocked:#d64545; --sleep:#a3acb9; --compute:#4a7fd4; --hl:#ffb000; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color:var(--fg); background:var(--bg); }
header { padding:16px 24px 8px; border-bottom:1px solid var(--line); background:var(--panel); }
h1 { margin:0; font-size:22px; } h2 { font-size:17px; margin:22px 0 8px; }
.sub, .help, .note { color:var(--muted); margin:4px 0; } .detail { margin:4px 0; }
main { padding:0 24px 24px; } footer { padding:12px 24px; color:var(--muted); font-size:12px; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
.status { font-size:13px; padding:2px 8px; border-radius:10px; vertical-align:middle;
  color:#fff; background:var(--blocked); } .status.ok { background:var(--hold); }
#finding-list { padding-left:22px; }
#finding-list li { margin:6px 0; padding:8px 10px; border:1px solid var(--line);
  border-radius:6px; cursor:pointer; background:#fff; }
#finding-list li:hover { background:var(--panel); }
#finding-list li.selected { border-color:var(--hl); box-shadow:0 0 0 2px var(--hl) inset; }
.kind { font-weight:600; text-transform:uppercase; font-size:12px; margin-right:6px; }
.kind.error { color:var(--blocked); } .kind.warning { color:#b86e00; }
.meta { color:var(--muted); font-size:12px; }
#timeline { overflow-x:auto; border:1px solid var(--line); border-radius:6px;
  background:#fff; }
#timeline svg text { font-size:12px; fill:var(--fg); }
.tl-hold { fill:var(--hold); } .tl-blocked { fill:var(--blocked); }
.tl-sleep { fill:var(--sleep); } .tl-compute { fill:var(--compute); }
.tl-open { opacity:0.55; }
.tl-ev { fill:#fff; stroke:#39414f; stroke-width:1; cursor:pointer; }
.tl-ev.hl { fill:var(--hl); stroke:#7a4d00; stroke-width:2; }
.tl-hb { stroke:#6b57c9; stroke-width:1.3; fill:none; opacity:0.8; }
.tl-cursor { stroke:var(--hl); stroke-width:2; }
.tl-engine { stroke:var(--blocked); stroke-width:1; stroke-dasharray:4 3; }
.key { display:inline-block; width:14px; height:10px; border-radius:2px;
  vertical-align:middle; margin-left:8px; }
.key.hold { background:var(--hold); } .key.blocked { background:var(--blocked); }
.key.sleep { background:var(--sleep); } .key.compute { background:var(--compute); }
.slider-row { display:flex; align-items:center; gap:10px; }
#seq { flex:1; } #seq-label { font-weight:600; min-width:90px; }
.moment-grid { display:grid; grid-template-columns:minmax(320px,1fr) minmax(320px,1fr);
  gap:16px; align-items:start; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:3px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { background:var(--panel); font-weight:600; position:sticky; top:0; }
#moment-table td.waiting { color:var(--blocked); font-weight:600; }
#moment-table td.ended { color:var(--muted); }
#moment-table tr.cycle td:first-child { color:var(--blocked); font-weight:700; }
#moment-graph svg text { font-size:12px; }
.mg-actor { fill:#fff; stroke:#39414f; } .mg-res { fill:#eef3fb; stroke:#4a7fd4; }
.mg-cycle { stroke:var(--blocked) !important; stroke-width:2.5; }
.mg-holds { stroke:var(--hold); stroke-width:2; fill:none; }
.mg-waits { stroke:var(--blocked); stroke-width:2; fill:none; stroke-dasharray:6 3; }
.graph-box { overflow:auto; border:1px solid var(--line); border-radius:6px; padding:8px;
  background:#fff; } .graph-svg { max-width:100%; height:auto; }
pre.dot { background:var(--panel); padding:8px; overflow:auto; }
#events { max-height:420px; overflow:auto; border:1px solid var(--line); border-radius:6px; }
#events th:nth-child(1) { width:5em; } #events th:nth-child(2) { width:8em; }
#events th:nth-child(3) { width:10em; }
#event-rows tr { cursor:pointer; } #event-rows tr:hover { background:var(--panel); }
#event-rows tr.hl { background:#fff1cc; } #event-rows tr.current { outline:2px solid var(--hl); }
#event-rows td:nth-child(1), #event-rows td:nth-child(2) { text-align:right; }
#event-rows tr.engine td { color:var(--blocked); font-weight:600; }
.no-lines th:nth-child(5), .no-lines td:nth-child(5) { display:none; }
"""

_SCRIPT = r"""
"use strict";
(function () {
const D = JSON.parse(document.getElementById("trace-data").textContent);
const probe = document.createElement("div");
probe.innerHTML = "<svg></svg>";
const SVG = probe.firstChild.namespaceURI;  // the SVG namespace, as the HTML parser gives it
const N = D.ev.length, A = D.actors.length;
const KIND = ["blocked", "sleep", "compute"];
function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                    : document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function lineOf(seq) {
  const l = D.ev[seq][3];
  return l ? (D.file || "line") + ":" + l : "";
}
function label(parent, text, max) {  // a name cut to fit an SVG box; the whole on hover
  if (text.length <= max) { parent.textContent = text; return parent; }
  parent.textContent = text.slice(0, max - 1) + "…";
  parent.appendChild(el("svg:title", {}, text));
  return parent;
}
function where(seq) { const l = lineOf(seq); return l ? " (" + l + ")" : ""; }

// ---- findings
const list = document.getElementById("finding-list");
if (!D.findings.length) {
  list.appendChild(el("li", {"class": "none"}, "No findings: nothing to fix in this run."));
}
D.findings.forEach(function (f, i) {
  const li = el("li", {"data-finding": i});
  li.appendChild(el("span", {"class": "kind " + f.severity}, f.kind.replace("_", " ")));
  li.appendChild(el("span", {"class": "msg"}, f.message));
  const lines = [...new Set(f.events.map(lineOf).filter(Boolean))];
  const m = "actors: " + (f.actors.join(", ") || "-") + " · objects: " +
            (f.objects.join(", ") || "-") + " · events: " +
            (f.events.length ? f.events.join(", ") : "-") +
            (lines.length ? " · lines: " + lines.join(", ") : "");
  li.appendChild(el("div", {"class": "meta"}, m));
  li.addEventListener("click", function () { selectFinding(i); });
  list.appendChild(li);
});

// ---- timeline (x: event order)
const ROW = 38, LEFT = 110, TOP = 26;
const step = Math.max(4, Math.min(40, 1100 / Math.max(N, 1)));
const width = LEFT + step * (N + 1) + 20, height = TOP + ROW * A + 16;
const X = function (s) { return LEFT + step * (s + 0.5); };
const Y = function (a) { return TOP + ROW * a; };
const svg = el("svg:svg", {width: width, height: height, "class": "tl"});
const defs = el("svg:defs");
const mk = el("svg:marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
  markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"});
mk.appendChild(el("svg:path", {d: "M0,0 L10,5 L0,10 z", fill: "#6b57c9"}));
defs.appendChild(mk); svg.appendChild(defs);
const tickEvery = Math.max(1, Math.ceil(60 / step));
for (let s = 0; s < N; s += tickEvery) {
  svg.appendChild(el("svg:text", {x: X(s), y: 14, "text-anchor": "middle",
    fill: "#5b6475"}, String(s)));
}
D.actors.forEach(function (a, i) {
  svg.appendChild(el("svg:rect", {x: 0, y: Y(i), width: width, height: ROW,
    fill: i % 2 ? "#fafbfd" : "#fff"}));
  svg.appendChild(label(el("svg:text", {x: 8, y: Y(i) + ROW / 2 + 4, "class": "actor-name"}),
                        a.name, 14));
});
function bar(cls, actor, b, e, top, h, title) {
  if (actor < 0) return;
  const x0 = X(b), x1 = e < 0 ? X(N - 1) + step / 2 : X(e);
  const r = el("svg:rect", {x: x0, y: Y(actor) + top, width: Math.max(2, x1 - x0), height: h,
    rx: 2, "class": cls + (e < 0 ? " tl-open" : "")});
  r.appendChild(el("svg:title", {}, title));
  svg.appendChild(r);
}
D.holds.forEach(function (h) {
  const r = D.resources[h[1]];
  bar("tl-hold", h[0], h[2], h[3], 5, 9, "holds " + r + " from seq " + h[2] +
      (h[3] < 0 ? " (never released)" : " to seq " + h[3]));
});
D.iv.forEach(function (v) {
  bar("tl-" + KIND[v[1]], v[0], v[2], v[3], 17, 12, D.ev[v[2]][2] +
      (v[3] < 0 ? " — never returned" : " — returned at seq " + v[3]) + where(v[2]));
});
D.hb.forEach(function (f) {
  const a = D.ev[f[0]][1], b = D.ev[f[1]][1];
  if (a < 0 || b < 0) return;
  const x0 = X(f[0]), y0 = Y(a) + ROW / 2, x1 = X(f[1]), y1 = Y(b) + ROW / 2;
  const p = el("svg:path", {d: "M" + x0 + "," + y0 + " C" + (x0 + x1) / 2 + "," + y0 + " " +
    (x0 + x1) / 2 + "," + y1 + " " + x1 + "," + y1, "class": "tl-hb",
    "marker-end": "url(#arrow)"});
  p.appendChild(el("svg:title", {}, D.hbKinds[f[2]] + ": seq " + f[0] + " → seq " + f[1]));
  svg.appendChild(p);
});
const ticks = [];
D.ev.forEach(function (e, s) {
  if (e[1] < 0) {
    const l = el("svg:line", {x1: X(s), x2: X(s), y1: TOP, y2: height - 10,
      "class": "tl-engine"});
    l.appendChild(el("svg:title", {}, "seq " + s + ": " + e[2]));
    svg.appendChild(l);
    ticks.push(l);
    return;
  }
  const c = el("svg:circle", {cx: X(s), cy: Y(e[1]) + ROW / 2, r: Math.min(4, step / 2.2),
    "class": "tl-ev", "data-seq": s});
  c.appendChild(el("svg:title", {}, "seq " + s + ", " + e[0].toFixed(6) + " s: " + e[2] +
                   where(s)));
  c.addEventListener("click", function () { setSeq(s); });
  svg.appendChild(c);
  ticks.push(c);
});
const cursor = el("svg:line", {x1: 0, x2: 0, y1: TOP - 6, y2: height - 6,
  "class": "tl-cursor"});
svg.appendChild(cursor);
document.getElementById("timeline").appendChild(svg);

// ---- events table
const tbody = document.getElementById("event-rows");
const rows = [];
D.ev.forEach(function (e, s) {
  const tr = el("tr", {"data-seq": s, "class": e[1] < 0 ? "engine" : ""});
  tr.appendChild(el("td", {}, String(s)));
  tr.appendChild(el("td", {}, e[0].toFixed(6)));
  tr.appendChild(el("td", {}, e[1] < 0 ? "-" : D.actors[e[1]].name));
  tr.appendChild(el("td", {"class": "mono"}, e[2]));
  tr.appendChild(el("td", {}, lineOf(s)));
  tr.addEventListener("click", function () { setSeq(s); });
  tbody.appendChild(tr);
  rows.push(tr);
});

if (!D.ev.some(function (e) { return e[3]; })) {  // no scenario lines (an older trace)
  document.getElementById("events-section").classList.add("no-lines");
}

// ---- the moment: who holds and who waits for what after event s
const slider = document.getElementById("seq");
slider.max = Math.max(0, N - 1);
const FIRST = D.actors.map(function () { return -1; });  // each actor's first event
const LAST_END = D.actors.map(function () { return -1; });  // and its end event
D.ev.forEach(function (e, i) {
  if (e[1] < 0) return;
  if (FIRST[e[1]] < 0) FIRST[e[1]] = i;
  if (/^end( |$)/.test(e[2])) LAST_END[e[1]] = i;
});
function stateAt(s) {
  const held = D.actors.map(function () { return []; });
  const holders = Object.create(null);  // by name: a lock may be called "toString"
  D.holds.forEach(function (h) {
    if (h[2] <= s && (h[3] < 0 || s < h[3])) {
      const r = D.resources[h[1]];
      held[h[0]].push(r);
      (holders[r] = holders[r] || []).push(D.actors[h[0]].name);
    }
  });
  const waits = D.actors.map(function () { return null; });
  D.iv.forEach(function (v) {
    if (v[0] >= 0 && v[2] <= s && (v[3] < 0 || s < v[3])) {
      const e = D.ev[v[2]];
      waits[v[0]] = {kind: v[1], text: e[2].replace(/ \.\.\.$/, ""), call: v[2],
                     target: v[4]};
    }
  });
  const started = FIRST.map(function (f) { return f >= 0 && f <= s; });
  const ended = LAST_END.map(function (f) { return f >= 0 && f <= s; });
  const atEnd = s >= N - 1;
  if (atEnd) {  // waits the events do not show: queued in a pool, not started
    D.end.waits.forEach(function (w) {
      const a = D.actors.findIndex(function (x) { return x.name === w[0]; });
      if (a >= 0 && !waits[a]) {
        waits[a] = {kind: 0, text: w[1] + " " + w[2], call: -1, target: w[2]};
      }
    });
  }
  return {held: held, holders: holders, waits: waits, started: started, ended: ended,
          cycle: atEnd ? D.end.cycle : [], stalled: atEnd ? D.end.stalled : []};
}
function targetOf(w) { return w.target || null; }
function typeOf(r) {  // own keys only: a resource may be called "constructor"
  return Object.prototype.hasOwnProperty.call(D.types, r) ? D.types[r] : "?";
}
function renderMoment(s) {
  const st = stateAt(s);
  const body = document.querySelector("#moment-table tbody");
  body.textContent = "";
  D.actors.forEach(function (a, i) {
    const tr = el("tr", {"data-actor": a.name});
    if (st.cycle.includes(a.name)) tr.classList.add("cycle");
    tr.appendChild(el("td", {}, a.name));
    const w = st.waits[i];
    let state = "not started", cls = "ended";
    if (st.ended[i]) { state = "ended"; }
    else if (w && w.kind === 0) {
      state = st.cycle.includes(a.name) ? "deadlocked" :
              st.stalled.includes(a.name) ? "stalled" : "blocked"; cls = "waiting";
    }
    else if (w) { state = KIND[w.kind]; cls = ""; }
    else if (st.started[i]) { state = "running"; cls = ""; }
    tr.appendChild(el("td", {"class": cls}, state));
    tr.appendChild(el("td", {}, st.held[i].join(", ") || "-"));
    let wt = "-";
    if (w && w.kind === 0) {
      const t = targetOf(w);
      const by = t && st.holders[t] ? " (held by " + st.holders[t].join(", ") + ")" : "";
      wt = w.text + by + (w.call >= 0 ? " since seq " + w.call + where(w.call) : "");
    }
    tr.appendChild(el("td", {"class": w && w.kind === 0 ? "waiting" : ""}, wt));
    body.appendChild(tr);
  });
  drawMomentGraph(st);
}
function drawMomentGraph(st) {
  const box = document.getElementById("moment-graph");
  box.textContent = "";
  const res = [];
  D.actors.forEach(function (a, i) {
    st.held[i].forEach(function (r) { if (!res.includes(r)) res.push(r); });
    const w = st.waits[i];
    if (w && w.kind === 0) { const t = targetOf(w); if (t && !res.includes(t)) res.push(t); }
  });
  const H = 30, G = 12, h = Math.max(A, res.length) * (H + G) + 44, W = 460;
  const g = el("svg:svg", {width: W, height: h, "class": "moment-svg"});
  const d2 = el("svg:defs");
  ["holds", "waits"].forEach(function (k) {
    const m = el("svg:marker", {id: "mg-" + k, viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto"});
    m.appendChild(el("svg:path", {d: "M0,0 L10,5 L0,10 z",
      fill: k === "holds" ? "#3f9b5b" : "#d64545"}));
    d2.appendChild(m);
  });
  g.appendChild(d2);
  g.appendChild(el("svg:text", {x: 10, y: 14, fill: "#5b6475"}, "actors"));
  g.appendChild(el("svg:text", {x: W - 150, y: 14, fill: "#5b6475"}, "resources"));
  g.appendChild(el("svg:text", {x: 10, y: h - 4, fill: "#5b6475"},
    "green: held by · red, dashed: waits for"));
  const ay = function (i) { return 24 + i * (H + G); };
  const edges = [];
  D.actors.forEach(function (a, i) {
    st.held[i].forEach(function (r) { edges.push(["holds", i, res.indexOf(r)]); });
    const w = st.waits[i];
    if (w && w.kind === 0) {
      const t = targetOf(w); if (t) edges.push(["waits", i, res.indexOf(t)]);
    }
  });
  edges.forEach(function (e) {
    const y0 = ay(e[1]) + H / 2 + (e[0] === "holds" ? 5 : -5);
    const y1 = ay(e[2]) + H / 2 + (e[0] === "holds" ? 5 : -5);
    const d = e[0] === "holds" ? "M" + (W - 150) + "," + y1 + " L" + 130 + "," + y0
                               : "M" + 130 + "," + y0 + " L" + (W - 150) + "," + y1;
    g.appendChild(el("svg:path", {d: d, "class": "mg-" + e[0],
      "marker-end": "url(#mg-" + e[0] + ")", "data-edge": e[0]}));
  });
  D.actors.forEach(function (a, i) {
    const on = st.cycle.includes(a.name) || st.stalled.includes(a.name);
    g.appendChild(el("svg:rect", {x: 10, y: ay(i), width: 120, height: H, rx: 3,
      "class": "mg-actor" + (on ? " mg-cycle" : "")}));
    g.appendChild(label(el("svg:text", {x: 70, y: ay(i) + H / 2 + 4, "text-anchor": "middle"}),
      a.name, 16));
  });
  res.forEach(function (r, j) {
    g.appendChild(el("svg:ellipse", {cx: W - 80, cy: ay(j) + H / 2, rx: 70, ry: H / 2,
      "class": "mg-res" + (st.cycle.includes(r) ? " mg-cycle" : "")}));
    g.appendChild(label(el("svg:text", {x: W - 80, y: ay(j) + H / 2 + 4,
      "text-anchor": "middle"}), r + " (" + typeOf(r) + ")", 20));
  });
  box.appendChild(g);
}
let current = -1;
function setSeq(s) {
  s = Math.max(0, Math.min(N - 1, s));
  slider.value = s;
  if (current >= 0 && rows[current]) rows[current].classList.remove("current");
  current = s;
  if (!N) return;
  rows[s].classList.add("current");
  document.getElementById("seq-label").textContent = "seq " + s + " of " + (N - 1);
  const e = D.ev[s];
  document.getElementById("moment-event").textContent = "seq " + s + ", " +
    e[0].toFixed(6) + " s, " + (e[1] < 0 ? "engine" : D.actors[e[1]].name) + ": " + e[2] +
    where(s);
  cursor.setAttribute("x1", X(s)); cursor.setAttribute("x2", X(s));
  const tl = document.getElementById("timeline");  // keep the moment in sight
  if (X(s) < tl.scrollLeft + LEFT || X(s) > tl.scrollLeft + tl.clientWidth - 20) {
    tl.scrollLeft = Math.max(0, X(s) - tl.clientWidth / 2);
  }
  renderMoment(s);
}
slider.addEventListener("input", function () { setSeq(Number(slider.value)); });

function selectFinding(i) {
  document.querySelectorAll("#finding-list li").forEach(function (li) {
    li.classList.toggle("selected", Number(li.dataset.finding) === i);
  });
  const seqs = new Set(D.findings[i].events);
  rows.forEach(function (r, s) { r.classList.toggle("hl", seqs.has(s)); });
  ticks.forEach(function (t, s) { t.classList.toggle("hl", seqs.has(s)); });
  const list = D.findings[i].events;
  if (list.length) {
    const last = Math.max.apply(null, list), first = Math.min.apply(null, list);
    const f = D.findings[i];  // a deadlock or stall: the engine's verdict, at the end
    setSeq(f.kind === "deadlock" || f.kind === "stall" ? N - 1 : last);
    const box = document.getElementById("events");
    box.scrollTop = rows[first].offsetTop - 30;
    document.getElementById("timeline").scrollLeft = Math.max(0, X(first) - 200);
  }
}
setSeq(N - 1);
})();
"""
