"""``tracer report``: the one-file HTML page of a trace.

Two halves. Without a browser: the command (exit codes, messages, the output it refuses), the
file (self-contained: no http(s) address anywhere, well-formed HTML, the actors and findings
in its data), and the hints ``tracer run`` and ``tracer explore`` print. In a real headless
Chromium (Debian's ``chromium``, driven by the ``playwright`` package, never a browser of its
own): pages of real runs (a deadlock, a race, a clean run) load from ``file://`` with no
console error and no network request, show every actor and finding, the slider changes the
wait-for view, and clicking a finding highlights its events. Each page's screenshot is saved
under ``$TRACER_SCREENSHOTS`` (default: this test run's temporary folder); the folder is
printed at the end of the run. ``$TRACER_CHROMIUM`` names another Chromium binary; without one
(or without playwright) the browser tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, tracer_cli

CASES = {"deadlock": "deadlock.yaml", "race": "bank_account_race.yaml",
         "clean": "bank_account_lock.yaml"}
CHROMIUM = os.environ.get("TRACER_CHROMIUM", "/usr/bin/chromium")  # Debian's package
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def page_data(page: str) -> dict[str, Any]:
    """The JSON document embedded in a report page."""
    m = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>', page,
                  re.S)
    assert m is not None, "the page has no embedded trace data"
    doc: dict[str, Any] = json.loads(m.group(1))
    return doc


class _Checker(HTMLParser):
    """Well-formedness: every element closed in order (void elements aside)."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "source", "wbr", "col",
                      "area", "base", "embed", "track", "path", "ellipse", "polygon",
                      "polyline", "line", "rect", "circle", "stop"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <path .../> in the inline SVG

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each case run for real, its trace analysed and reported: name -> paths and facts."""
    folder = tmp_path_factory.mktemp("report")
    out: dict[str, dict[str, Any]] = {}
    for name, scenario in CASES.items():
        trace = folder / f"{name}.json"
        ran = tracer_cli("run", str(SCENARIOS / scenario), "-o", str(trace))
        assert ran.returncode in (0, 1), ran.stderr
        made = tracer_cli("report", str(trace))
        assert made.returncode == 0, made.stderr
        page = folder / f"{name}.html"
        assert made.stdout.strip() == f"report: {page}"
        found = tracer_cli("analyze", str(trace), "--format", "json", "--no-graphs")
        doc = json.loads(found.stdout)
        actors = [a["name"] for a in json.loads(trace.read_text("utf-8"))["actors"]]
        out[name] = {"trace": trace, "page": page, "run": ran.stdout,
                     "findings": doc["findings"], "actors": actors}
    return out


# -- without a browser ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_page_is_self_contained_and_well_formed(runs: dict[str, dict[str, Any]],
                                                 name: str) -> None:
    text = runs[name]["page"].read_text("utf-8")
    assert "http://" not in text and "https://" not in text  # nothing to fetch, not even a DTD
    assert not re.search(r"<(link|img|iframe|object)\b|\bsrc=|@import|url\((?!#)", text)
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.doctype and not checker.errors and not checker.stack, \
        (checker.errors, checker.stack)
    data = page_data(text)
    assert [a["name"] for a in data["actors"]] == runs[name]["actors"]
    assert [(f["kind"], f["message"], f["events"]) for f in data["findings"]] == \
        [(f["kind"], f["message"], f["events"]) for f in runs[name]["findings"]]
    for actor in runs[name]["actors"]:
        assert actor in text


def test_deadlock_page_data_says_who_holds_and_waits(runs: dict[str, dict[str, Any]]) -> None:
    """The holds and the open waits of the deadlock: t1 holds A and never gets B, t2 holds B
    and never gets A; the engine's cycle marks the end; an arrow spans the two actors only if
    one synchronised with the other (none does in ABBA)."""
    data = page_data(runs["deadlock"]["page"].read_text("utf-8"))
    names = [a["name"] for a in data["actors"]]
    res = data["resources"]
    held = {(names[a], res[r]) for a, r, _b, end in data["holds"] if end < 0}
    assert held == {("t1", "A"), ("t2", "B")}
    open_waits = {(names[a], data["ev"][b][2], t) for a, _k, b, end, t in data["iv"]
                  if end < 0}
    assert open_waits == {("t1", "acquire B ...", "B"), ("t2", "acquire A ...", "A")}
    assert set(data["end"]["cycle"]) == {"t1", "t2", "A", "B"}
    assert data["hb"] == []


def test_report_shows_the_scenario_line_when_events_have_one(tmp_path: Path,
                                                             runs: dict[str, Any]) -> None:
    doc = json.loads(runs["deadlock"]["trace"].read_text("utf-8"))
    for e in doc["events"]:
        if e.get("actor") is not None:
            e["line"] = 100 + e["seq"]
    trace = tmp_path / "lined.json"
    trace.write_text(json.dumps(doc), "utf-8")
    made = tracer_cli("report", str(trace), "-o", str(tmp_path / "lined.html"))
    assert made.returncode == 0, made.stderr
    data = page_data((tmp_path / "lined.html").read_text("utf-8"))
    assert data["file"] == "deadlock.yaml"
    assert [e[3] for e in data["ev"]] == [100 + e["seq"] if e.get("actor") else 0
                                          for e in doc["events"]]


def test_report_refuses_to_overwrite_the_trace(runs: dict[str, dict[str, Any]]) -> None:
    trace = runs["clean"]["trace"]
    before = trace.read_bytes()
    proc = tracer_cli("report", str(trace), "-o", str(trace))
    assert proc.returncode == 2
    assert proc.stderr.startswith("tracer: error: ") and "would destroy it" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert trace.read_bytes() == before


@pytest.mark.parametrize("content", [None, "not json", '{"format": "tracer-trace/1"}'])
def test_report_of_a_bad_trace_is_one_message(tmp_path: Path, content: str | None) -> None:
    trace = tmp_path / "bad.json"
    if content is not None:
        trace.write_text(content, "utf-8")
    proc = tracer_cli("report", str(trace))
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("tracer: error: ") or proc.stderr.startswith("Error: ")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(trace) in proc.stderr
    assert not (tmp_path / "bad.html").exists()


def test_report_that_cannot_be_written(runs: dict[str, dict[str, Any]],
                                       tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", "utf-8")
    out = tmp_path / "file" / "r.html"  # a folder that is a file
    proc = tracer_cli("report", str(runs["clean"]["trace"]), "-o", str(out))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"tracer: error: cannot write the report to {out}")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_without_dot_the_graphs_are_dot_text(runs: dict[str, dict[str, Any]],
                                             tmp_path: Path) -> None:
    out = tmp_path / "nodot.html"
    env = {**os.environ, "PYTHONUTF8": "1", "PATH": str(tmp_path / "empty")}
    proc = subprocess.run([sys.executable, "-m", "tracer", "report",
                           str(runs["deadlock"]["trace"]), "-o", str(out)], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text("utf-8")
    assert '<pre class="dot">digraph wait_for' in text
    assert "<svg class=\"graph-svg\"" not in text
    assert "dot</code> is not installed" in text


@pytest.mark.needs_dot
def test_with_dot_the_graphs_are_inline_svg(runs: dict[str, dict[str, Any]]) -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    text = runs["deadlock"]["page"].read_text("utf-8")
    assert text.count('<svg class="graph-svg"') == 1  # the wait-for graph (no lock order)
    assert '<pre class="dot">' not in text


def _hint(stdout: str) -> list[str]:
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip().startswith("report: ")]
    return [shlex.split(ln.removeprefix("report: "))[-1] for ln in lines]


def test_run_and_explore_say_how_to_open_the_report(tmp_path: Path) -> None:
    folder = tmp_path / "my traces"
    trace = folder / "dl.json"
    ran = tracer_cli("run", str(SCENARIOS / "deadlock.yaml"), "-o", str(trace))
    assert ran.returncode == 1
    assert f"report: tracer report {shlex.quote(str(trace))}" in ran.stdout.splitlines()
    assert _hint(ran.stdout) == [str(trace)]
    found = tracer_cli("explore", str(SCENARIOS / "deadlock.yaml"), "--runs", "2",
                       "--traces", str(folder))
    assert found.returncode == 1, found.stderr
    hints = _hint(found.stdout)
    assert hints and all(Path(h).is_file() and h.startswith(str(folder)) for h in hints)


# -- in a real headless Chromium -------------------------------------------------------------


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where the screenshots go; said at the end of the run."""
    env = os.environ.get("TRACER_SCREENSHOTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    saved = sorted(p.name for p in folder.glob("*.png"))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if saved and capture is not None:
        with capture.global_and_fixture_disabled():  # printed past the output capture
            print(f"\nreport screenshots ({', '.join(saved)}): {folder}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by playwright (its own browsers are never used)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set "
                    "TRACER_CHROMIUM to a Chromium binary)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed "
        "(pip install -e '.[test]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


class _Page:
    """A report page open in the browser, with what it logged and requested."""

    def __init__(self, browser: Any, path: Path, profile: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text)
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)

    def texts(self, selector: str) -> list[str]:
        got: list[str] = self.page.eval_on_selector_all(
            selector, "els => els.map(e => e.textContent)")
        return got

    def moment(self) -> dict[str, list[str]]:
        """The wait-for view: actor -> its row's cells (state, holds, waits for)."""
        rows: list[list[str]] = self.page.eval_on_selector_all(
            "#moment-table tbody tr",
            "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))")
        return {r[0]: r[1:] for r in rows}


@pytest.fixture
def open_page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    opened: list[_Page] = []

    def open_(path: Path) -> _Page:
        p = _Page(browser, path, tmp_path)
        opened.append(p)
        return p
    yield open_
    for p in opened:
        p.context.close()


@pytest.mark.parametrize("name", list(CASES))
def test_page_in_chromium(runs: dict[str, dict[str, Any]], open_page: Any, shots: Path,
                          name: str) -> None:
    """No console error, no request but the file itself; every actor and every finding."""
    case = runs[name]
    p = open_page(case["page"])
    assert p.errors == []
    assert p.requests == [p.url]
    assert p.texts("#timeline .actor-name") == case["actors"]
    assert list(p.moment()) == case["actors"]
    shown = p.texts("#finding-list li[data-finding] .msg")
    assert shown == [f["message"] for f in case["findings"]]
    if not case["findings"]:
        assert p.texts("#finding-list li") == ["No findings: nothing to fix in this run."]
    p.page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert (shots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_slider_moves_the_wait_for_view(runs: dict[str, dict[str, Any]],
                                        open_page: Any) -> None:
    """At the end t1 and t2 are deadlocked, each waiting for the lock the other holds; after
    seq 2 (t1's acquire of A returned) t1 holds A and t2 has not started; at seq 0 nobody
    holds anything. Moved with the keyboard, as a user would."""
    p = open_page(runs["deadlock"]["page"])
    end = p.moment()
    assert end["t1"][0] == "deadlocked" and end["t1"][1] == "A"
    assert end["t1"][2].startswith("acquire B (held by t2) since seq ")
    assert end["t2"][0] == "deadlocked" and end["t2"][2].startswith("acquire A (held by t1)")
    assert p.page.locator("#moment-graph [data-edge=waits]").count() == 2
    p.page.focus("#seq")
    p.page.keyboard.press("Home")
    assert p.texts("#seq-label") == ["seq 0 of 12"]
    start = p.moment()
    assert start["t1"] == ["running", "-", "-"] and start["t2"] == ["not started", "-", "-"]
    assert p.page.locator("#moment-graph [data-edge]").count() == 0
    p.page.keyboard.press("ArrowRight")
    p.page.keyboard.press("ArrowRight")
    assert p.texts("#seq-label") == ["seq 2 of 12"]
    assert p.moment()["t1"][1] == "A"
    assert p.page.locator("#moment-graph [data-edge=holds]").count() == 1
    p.page.click("#finding-list li[data-finding='0']")  # the deadlock: its verdict, at the end
    assert p.texts("#seq-label") == ["seq 12 of 12"]
    assert p.moment()["t2"][0] == "deadlocked"
    assert p.errors == []


PROTO_NAMES = """\
name: proto_names
primitives: {toString: lock, __proto__: lock, both: {type: barrier, parties: 2}}
actors:
  - {name: t1, kind: thread, steps: [{acquire: toString}, {wait: both}, {acquire: __proto__}]}
  - {name: t2, kind: thread, steps: [{acquire: __proto__}, {wait: both}, {acquire: toString}]}
"""


def test_names_of_javascript_object_properties_are_names(tmp_path: Path,
                                                         open_page: Any) -> None:
    """Locks called toString and __proto__ (an Object's own property names in the page's
    script): the moment view says who holds and waits for them, with no script error."""
    scenario = tmp_path / "proto_names.yaml"
    scenario.write_text(PROTO_NAMES, encoding="utf-8")
    ran = tracer_cli("run", str(scenario), "-o", str(tmp_path / "p.json"))
    assert ran.returncode == 1, ran.stderr  # it deadlocks
    made = tracer_cli("report", str(tmp_path / "p.json"))
    assert made.returncode == 0, made.stderr
    p = open_page(tmp_path / "p.html")
    end = p.moment()
    assert end["t1"][:2] == ["deadlocked", "toString"], end
    assert end["t1"][2].startswith("acquire __proto__ (held by t2) since seq "), end
    assert end["t2"][2].startswith("acquire toString (held by t1) since seq "), end
    assert p.errors == []


def test_clicking_a_finding_highlights_its_events(runs: dict[str, dict[str, Any]],
                                                  open_page: Any, shots: Path) -> None:
    case = runs["race"]
    p = open_page(case["page"])
    for i, f in enumerate(case["findings"]):
        p.page.click(f"#finding-list li[data-finding='{i}']")
        rows = p.page.eval_on_selector_all("#event-rows tr.hl",
                                           "trs => trs.map(t => Number(t.dataset.seq))")
        assert rows == sorted(set(f["events"]))
        dots = p.page.eval_on_selector_all("#timeline .tl-ev.hl",
                                           "cs => cs.map(c => Number(c.dataset.seq))")
        assert dots == sorted(set(f["events"]))
        last = p.page.eval_on_selector("#seq", "e => e.max")
        assert p.texts("#seq-label") == [f"seq {max(f['events'])} of {last}"]
        assert p.page.locator("#finding-list li.selected").count() == 1
    p.page.screenshot(path=str(shots / "race-finding-selected.png"), full_page=True)
    assert p.errors == []


def test_names_are_text_not_markup(runs: dict[str, dict[str, Any]], open_page: Any,
                                   tmp_path: Path) -> None:
    """An actor and a lock named like markup are shown as written: nothing runs, nothing is
    fetched, the page's script is not cut short."""
    evil, lock = "t1</script><img src=x onerror=alert(1)>&amp;", "lock A<!--"
    text = runs["deadlock"]["trace"].read_text("utf-8")
    text = text.replace('"t1"', json.dumps(evil)).replace('"A"', json.dumps(lock))
    trace = tmp_path / "evil.json"
    trace.write_text(text, "utf-8")
    assert tracer_cli("report", str(trace)).returncode == 0
    p = open_page(tmp_path / "evil.html")
    assert p.errors == [] and p.requests == [p.url]
    moment = p.moment()
    assert list(moment) == [evil, "t2"]
    assert moment[evil][1] == lock
    assert moment["t2"][2].startswith(f"acquire {lock} (held by {evil})")
    assert p.page.locator("img").count() == 0
