"""The command's side of a traced program: check it, start its host, wait, make the trace.

The host (``_host``) runs in a process group of its own, so that once it has written its
events every process the program left behind is killed with the group: no thread or process
of a run outlives it. A stop signal the command gets (Ctrl-C, SIGTERM, SIGHUP) is passed to
the host as a byte on its control pipe; the host writes what it has and leaves, and the trace
is kept. A host that does not leave within its timeout and a grace is killed; the trace then
says that its events were lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import importlib.util
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracer._gc import gc_paused
from tracer._version import __version__
from tracer.engine._stops import interrupted_by, shielded
from tracer.program._seam import payload_fields
from tracer.trace import Ev, TraceData
from tracer.trace._io import render_trace
from tracer.trace._read import program_scenario

GRACE = 5.0  # seconds the host gets past its timeout (it ends itself at the timeout)


class ProgramError(Exception):
    """The program cannot be run: not a file, not Python, a syntax error, no such module."""


@dataclass
class Program:
    """What to run: a file (``path``) or a module (``module``), with its arguments."""

    path: str | None
    module: str | None
    argv: list[str] = field(default_factory=list)
    root: str = ""
    source: bytes = b""

    @property
    def name(self) -> str:
        if self.module:
            return self.module.rsplit(".", 1)[-1]
        return Path(self.path or "program").stem

    @property
    def shown(self) -> str:
        return self.path if self.path is not None else f"-m {self.module}"

    def record(self) -> dict[str, Any]:
        """The trace's ``program``: what ran, with what, and a hash of its source."""
        return {"path": self.path, "module": self.module, "argv": list(self.argv),
                "sha256": hashlib.sha256(self.source).hexdigest()}


def check_program(path: str | None, module: str | None, argv: list[str]) -> Program:
    """The program to run, checked: a readable Python file without a syntax error (or a
    module that can be found from the current folder). Raises :class:`ProgramError`."""
    if module is not None:
        sys.path.insert(0, os.getcwd())
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError) as exc:
            raise ProgramError(f"-m {module}: no such module from {os.getcwd()} ({exc}; run "
                               "tracer from the folder the module is imported from)") from None
        finally:
            sys.path.pop(0)
        if spec is None or spec.origin is None or not os.path.isfile(spec.origin):
            raise ProgramError(f"-m {module}: no such module from {os.getcwd()} "
                               "(run tracer from the folder the module is imported from)")
        origin = spec.origin
        if spec.submodule_search_locations is not None:  # a package: its __main__
            main = os.path.join(os.path.dirname(origin), "__main__.py")
            if not os.path.isfile(main):
                raise ProgramError(f"-m {module}: the package has no __main__.py to run")
            origin = main
        source = _read(origin, f"-m {module} ({origin})")
        _compiles(source, origin, os.path.relpath(origin))
        return Program(None, module, argv, os.getcwd(), source)
    assert path is not None
    if not os.path.exists(path):
        raise ProgramError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ProgramError(f"{path}: is a folder; give a Python file (or -m MODULE)")
    source = _read(path, path)
    _compiles(source, path, path)
    return Program(path, None, argv, os.path.dirname(os.path.abspath(path)), source)


def _read(path: str, shown: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ProgramError(f"{shown}: cannot be read: {exc.strerror}") from None


def _compiles(source: bytes, path: str, shown: str) -> None:
    if b"\0" in source:
        raise ProgramError(f"{shown}: is not a Python program (it holds binary data)")
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"{shown}:{exc.lineno}" if exc.lineno else shown
        text = f"\n    {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        raise ProgramError(f"{where}: not valid Python: {exc.msg}{text}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProgramError(f"{shown}: is not a Python program ({exc})") from None


_EV_CORE = frozenset(("seq", "ts", "actor", "op", "target", "phase", "result", "line", "value",
                     "item"))
_DOC_PARTS = frozenset(("format", "scenario", "meta", "actors", "events", "outcome", "final"))


@dataclass
class ProgramRun:
    """One run of a program: its trace (a document in the trace format) and how it ended."""

    program: Program
    doc: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.doc["outcome"]["status"])

    @property
    def detail(self) -> str:
        return str(self.doc["outcome"].get("detail", ""))

    @property
    def duration(self) -> float:
        return float(self.doc["meta"].get("duration", 0.0))

    @property
    def event_count(self) -> int:
        return len(self.doc["events"])

    @property
    def actors(self) -> list[dict[str, Any]]:
        return list(self.doc["actors"])

    def to_json(self) -> str:
        """The trace's text, laid out as every trace is (one event per line)."""
        doc = self.doc
        head = {k: v for k, v in doc.items() if k not in ("format", "events", "outcome")}
        events = ",\n".join(orjson.dumps(e, option=orjson.OPT_NON_STR_KEYS).decode()
                            for e in doc["events"])
        return render_trace(head, events, {"outcome": doc["outcome"]})

    def trace_data(self, source: str = "<run>") -> TraceData:
        """The run's :class:`TraceData` for the analyses, made from the document in memory:
        equal to ``parse_trace_data(self.to_json(), source)`` (tests/test_program_run.py
        checks it) at a fraction of the cost -- reading back the text just written cost a
        run more than the program and the analysis together. The checks of the reader are
        left out: the document is the host's, numbered 0..N-1 by :func:`assemble`, its
        values JSON's own already (the host wrote them as JSON and this process read them)."""
        doc = self.doc
        strings: dict[str, str] = {}
        intern = strings.setdefault
        new = Ev.__new__
        core = _EV_CORE
        events: list[Ev] = []
        append = events.append
        with gc_paused():
            for e in doc["events"]:
                ev = new(Ev)
                get = e.get
                ev.seq = e["seq"]
                ev.ts = e["ts"]
                actor = e["actor"]
                ev.actor = intern(actor, actor) if actor is not None else None
                op = e["op"]
                ev.op = intern(op, op)
                target = get("target")
                ev.target = intern(target, target) if target.__class__ is str else target
                phase = get("phase")
                ev.phase = intern(phase, phase) if phase is not None else None
                result = get("result")
                ev.result = intern(result, result) if result.__class__ is str else result
                line = ev.line = get("line")
                value = ev.value = get("value")
                item = ev.item = get("item")
                # (assemble leaves out the fields that are None: count the ones it kept)
                if len(e) > 4 + (target is not None) + (phase is not None) \
                        + (result is not None) + (line is not None) + (value is not None) \
                        + (item is not None):
                    ev.rest = {k: v for k, v in e.items() if k not in core} or None
                else:
                    ev.rest = None
                append(ev)
        scenario = program_scenario(doc["program"])
        extra = {k: v for k, v in doc.items() if k not in _DOC_PARTS}
        return TraceData(source, scenario, doc["meta"], doc["actors"], events, doc["outcome"],
                         None, extra)


def _start_host(config_path: str, ctrl: int, entry: str = "_host") -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", f"tracer.program.{entry}", config_path]
    env = dict(os.environ)
    # the host imports tracer from where this process did (an editable install, a checkout)
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    kwargs: dict[str, Any] = {"pass_fds": (ctrl,), "env": env}
    if sys.version_info >= (3, 11):
        kwargs["process_group"] = 0
    else:  # pragma: no cover - 3.10
        kwargs["preexec_fn"] = os.setpgrp
    return subprocess.Popen(cmd, **kwargs)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_program(program: Program, timeout: float = 10.0, mode: str = "run",
                on_started: Any = None, control: dict[str, Any] | None = None,
                host_limit: float | None = None,
                on_done: Callable[[str], object] | None = None) -> ProgramRun:
    """Run ``program`` in a host process and return its trace (``control``: run its actors
    one at a time, see ``_control``; ``host_limit``: how long the host may take, default
    ``timeout``; ``on_done(folder)``: called once the host is gone, with the folder of its
    files)."""
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    with tempfile.TemporaryDirectory(prefix="tracer-program-") as tmp:
        events_path = os.path.join(tmp, "events.json")
        config: dict[str, Any] = {
            "path": os.path.abspath(program.path) if program.path else None,
            "module": program.module, "argv": program.argv, "root": program.root,
            "timeout": timeout, "events": events_path, "t0": time.perf_counter()}
        if control is not None:
            config["control"] = {**control, **({"divergence_out": os.path.join(
                tmp, "divergence.txt")} if control.get("strategy") == "replay" else {})}
        r, w = os.pipe()
        config["ctrl"] = r
        config_path = os.path.join(tmp, "config.json")
        with open(config_path, "wb") as f:
            f.write(orjson.dumps(config))
        stopped: str | None = None
        with shielded():
            # (an exploration's host forks a host per schedule: ``_fork``)
            proc = _start_host(config_path, r,
                               "_fork" if control and "stop" in control else "_host")
        os.close(r)
        try:
            try:
                if on_started is not None:  # (a stop signal may come as soon as it is said)
                    on_started()
                proc.wait((timeout if host_limit is None else host_limit) + GRACE)
            except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (see engine/_stops)
                stopped = interrupted_by(exc)
                with shielded():
                    try:
                        os.write(w, stopped.removeprefix("interrupted by ").encode())
                    except OSError:
                        pass
                    try:
                        proc.wait(GRACE)
                    except subprocess.TimeoutExpired:
                        pass
        except subprocess.TimeoutExpired:
            pass
        finally:
            with shielded():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                _kill_group(proc.pid)
                os.close(w)
        # (the host's events are a list per event: the collector would walk them all again
        # at each of the many collections that reading, merging and assembling them cause)
        with gc_paused():
            host: dict[str, Any] | None = None
            try:
                with open(events_path, "rb") as f:
                    host = orjson.loads(f.read())
            except (OSError, orjson.JSONDecodeError):
                host = None
            if host is not None:
                host["children"] = _children_events(tmp)
            if on_done is not None:
                on_done(tmp)
            doc = assemble(program, host, proc.returncode, started_at, mode, timeout, stopped)
    return ProgramRun(program, doc)


def _children_events(folder: str) -> list[dict[str, Any]]:
    """The events the program's child processes wrote (``events-<pid>.json``)."""
    out = []
    for fn in sorted(os.listdir(folder)):
        if fn.startswith("events-") and fn.endswith(".json"):
            try:
                with open(os.path.join(folder, fn), "rb") as f:
                    out.append(orjson.loads(f.read()))
            except (OSError, orjson.JSONDecodeError):
                continue
    return out


def _merge(host: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
    """The events, actors and primitives of every process of the program: the events in one
    order by ``ts`` (each process's own kept in its ``seq`` order), an actor whose name another
    process took renamed ``name@pid``."""
    children = host.get("children") or []
    actors = list(host["actors"])
    prims = dict(host.get("primitives", {}))
    if not children:
        return host["events"], actors, prims
    streams: list[list[Any]] = [[(0, e) for e in host["events"]]]
    taken = {a["name"] for a in actors}
    for k, child in enumerate(children, 1):
        rename: dict[str, str] = {}
        for actor in child.get("actors", []):
            if actor["name"] in taken:
                rename[actor["name"]] = f"{actor['name']}@{actor['pid']}"
                actor = {**actor, "name": rename[actor["name"]]}  # noqa: PLW2901
            taken.add(actor["name"])
            actors.append(actor)
        for name, spec in child.get("primitives", {}).items():
            prims.setdefault(name, spec)
        evs = []
        for e in child.get("events", []):
            evs.append((k, [*e[:2], rename[e[2]], *e[3:]] if e[2] in rename else e))
        streams.append(evs)
    if len(streams) == 1:
        return host["events"], actors, prims
    merged = heapq.merge(*streams, key=lambda ke: ke[1][1])
    return [e if k == 0 else [None, *e[1:]] for k, e in merged], actors, prims


def _status_of(a: dict[str, Any], blocked: set[str], status: str) -> str:
    if a.get("state") == "done":
        if a.get("result") == "cancelled":
            return "cancelled"
        return "error" if a.get("error") else "ok"
    if a["name"] in blocked:
        return "blocked"
    if a.get("daemon") and status == "ok":
        return "abandoned"
    return "running"


def assemble(program: Program, host: dict[str, Any] | None, returncode: int | None,
             started_at: str, mode: str, timeout: float, stopped: str | None) -> dict[str, Any]:
    """The trace document of a run, from the host's events (None: the host left none)."""
    record = program.record()
    meta: dict[str, Any] = {"tracer_version": __version__, "python": platform.python_version(),
                            "started_at": started_at, "mode": mode, "seed": None,
                            "source": program.path or f"-m {program.module}"}
    if host is None:
        why = (f"the program's host process was killed after {timeout:g} s and a grace of "
               f"{GRACE:g} s, its events are lost" if returncode in (-9, None) else
               f"the program's host process died (exit status {returncode}); its events "
               "are lost")
        status = "interrupted" if stopped else "timeout" if returncode in (-9, None) else "error"
        record["primitives"] = {}
        return {"format": "tracer-trace/1", "program": record, "meta": meta, "actors": [],
                "events": [], "outcome": {"status": status, "detail": stopped or why}}
    record["exit_status"] = host.get("exit_status")
    host_events, host_actors, record["primitives"] = _merge(host)
    meta["duration"] = host.get("duration", 0.0)
    events: list[dict[str, Any]] = []
    blocked: set[str] = set()
    renumbered: dict[int, int] = {}
    latest = 0.0
    for n, e in enumerate(host_events):
        seq, ts, actor, op, target, phase, result, site, payload = e
        if seq is not None:  # (a child's seqs are its own: nothing refers to them)
            renumbered[seq] = n
        # (two threads may take the seq and read the clock in opposite orders)
        latest = max(latest, ts)
        ev: dict[str, Any] = {"seq": n, "ts": round(latest, 6),
                              "actor": actor or None, "op": op}
        if target is not None:
            ev["target"] = target
        if phase is not None:
            ev["phase"] = phase
        if result is not None:
            ev["result"] = result
        if site is not None:
            ev["line"] = site
        if payload is not None:
            for k, v in payload_fields(payload).items():
                ev.setdefault(k, v)
        if op in ("deadlock", "stall") and not actor:
            blocked |= set(ev.get("actors") or ())
        events.append(ev)
    _renumber(events, renumbered)
    status = host["status"]
    actors = [{"name": a["name"], "kind": a["kind"], "pid": a["pid"], "tid": a["tid"],
               "daemon": a["daemon"], "status": _status_of(a, blocked, status)}
              for a in host_actors]
    return {"format": "tracer-trace/1", "program": record, "meta": meta, "actors": actors,
            "events": events, "outcome": {"status": status, "detail": host.get("detail", "")}}


def _renumber(events: list[dict[str, Any]], renumbered: dict[int, int]) -> None:
    """The engine events name the seqs of the calls they are about (``waits[].call_seq``);
    the events were numbered again from 0 without gaps (the host's seqs may have one: a seq
    taken as the run ended), and those references follow."""
    for ev in events:
        for w in ev.get("waits") or ():
            if isinstance(w, dict) and w.get("call_seq") is not None:
                w["call_seq"] = renumbered.get(w["call_seq"])
