"""The command's side of ``tracer explore prog.py`` and of ``tracer replay`` of a program's
trace: start one host under control (``_control``), then read what it wrote.

An exploration is one host: it installs the patches once and forks a child per schedule
(starting a host costs about 0.1-0.3 s, a fork about a millisecond); each child writes its
events to ``s<n>/events.json``. Here each schedule's events become a trace, and a schedule
equivalent to one already judged (same per-actor operations, same order of the actors on
each object) is counted without being analyzed again, as scenario explorations do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tracer.program._control import read_divergence, replay_events
from tracer.program._launch import Program, ProgramError, ProgramRun, assemble, check_program
from tracer.program._launch import _children_events as children_events
from tracer.program._launch import run_program as _run_program
from tracer.program._seam import payload_fields

# (kind, actors, objects) -> the findings of a schedule, read by the judge
Judge = Callable[[ProgramRun, str], Sequence[Any]]

# an object's address in a value's repr (``<Account object at 0x7f...>``), a thread's ident
# (``<Thread(one, started 1396...)>``, a held RLock's ``owner=1396...``), a process's pids
# and whether it has exited yet (``<Process name='p1' pid=7896 parent=7885 started>``): not
# the program's doing, they differ from one process to the next
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}|(?<=started |stopped )(?:daemon )?[0-9]{6,}"
                      r"|(?<=owner=)[0-9]{6,}|(?<= pid=)[0-9]+|(?<= parent=)[0-9]+"
                      r"|(?<=[0-9] )(?:started|stopped(?: exitcode=[-\w]+)?)(?=[ >])")


def _plain(value: Any) -> Any:
    """``value`` without what differs from one process to the next (also inside the lists
    and mappings a value may be: a list of threads)."""
    if isinstance(value, str):
        return _ADDRESS.sub("…", value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _ending(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The verdict a recording ended with (its last event, a deadlock or a stall), which a
    replay that reaches the recording's end in the same state ends with too."""
    if events and events[-1].get("actor") is None and events[-1].get("op") in (
            "deadlock", "stall"):
        last = events[-1]
        return {"op": last["op"], "payload": {k: last[k] for k in
                                              ("actors", "objects", "detail", "waits")
                                              if k in last}}
    return None


def comparable(events: Sequence[Any]) -> list[dict[str, Any]]:
    """Events as a replay compares them: values and items without objects' addresses."""
    out = []
    for e in events:
        d = e if isinstance(e, dict) else e.as_dict()
        if isinstance(d.get("value"), (str, list, dict)) or \
                isinstance(d.get("item"), (str, list, dict)):
            d = {**d, **{k: _plain(d[k]) for k in ("value", "item") if k in d}}
        out.append(d)
    return out


def schedule_key(events: Sequence[Sequence[Any]]) -> int:
    """A schedule's fingerprint up to the order of independent operations (each actor's own
    operations, and per object the order of the actors on it), from the host's events."""
    per: dict[str, list[tuple[Any, ...]]] = {}
    for _seq, _ts, actor, op, target, phase, result, _site, payload in events:
        if not actor:
            per.setdefault("host", []).append((op,))
            continue
        value = None
        if payload is not None:
            fields = payload_fields(payload)
            value = _plain(repr(fields.get("item", fields.get("value"))))
        per.setdefault("actor:" + actor, []).append((op, target, phase, result, value))
        if target is not None:
            per.setdefault("object:" + str(target), []).append((actor, op))
    text = repr(sorted((k, tuple(v)) for k, v in per.items()))
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def explore(program: Program, runs: int, seed: int, strategy: str, depth: int,
            timeout: float, add: Callable[[int, ProgramRun | None, int, int], None],
            on_started: Callable[[], object] | None = None) -> bool:
    """Run ``runs`` schedules of ``program``; ``add(n, run, key, seed)`` for each (``run``
    None: equivalent to schedule already given, by ``key``). True when interrupted."""
    control: dict[str, Any] = {"strategy": strategy, "seed": seed, "depth": depth,
                               "start": 0, "stop": runs}
    if strategy == "pct":  # its change points fall among the choices of one schedule
        probe = _run_program(program, timeout, "explore",
                             control={"strategy": "first", "seed": 0})
        control["length"] = max(2, len(probe.doc["events"]))
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    seen: set[int] = set()

    def collect(tmp: str) -> None:
        from tracer.engine.schedule.explore.scheduler import schedule_seed  # noqa: PLC0415

        for n in range(runs):
            folder = os.path.join(tmp, f"s{n}")
            path = os.path.join(folder, "events.json")
            if not os.path.exists(path) and not os.path.exists(
                    os.path.join(tmp, f"s{n + 1}")):
                break  # (not run: the exploration was stopped)
            try:
                with open(path, "rb") as f:
                    host: dict[str, Any] | None = orjson.loads(f.read())
            except (OSError, orjson.JSONDecodeError):
                host = None
            if host is not None:  # (the events of its child processes)
                host["children"] = children_events(folder)
            shutil.rmtree(folder, ignore_errors=True)
            key = schedule_key(host["events"]) if host is not None else -1
            sched_seed = schedule_seed(seed, n)
            if key in seen and host is not None:
                add(n, None, key, sched_seed)
                continue
            seen.add(key)
            doc = assemble(program, host, None if host is None else 0, started_at, "explore",
                           timeout, None)
            doc["meta"]["seed"] = sched_seed
            add(n, ProgramRun(program, doc), key, sched_seed)
    done = _run_program(program, timeout, "explore", on_started=on_started, control=control,
                        host_limit=runs * (timeout + 2.0), on_done=collect)
    return done.status == "interrupted"


@dataclass
class ProgramReplay:
    """What a replay of a program's trace did: its run, and whether it kept to the recorded
    order."""

    result: ProgramRun
    recorded: Sequence[Any]  # the recorded trace's events
    divergence: str | None  # where the run left the recorded order (one sentence), if it did

    def difference(self, replayed: Any = None) -> str | None:
        """The first actor event where the replay's trace (``replayed``: read back; default:
        the run's own events) differs from the recorded one, as a sentence; None when they
        are the same operation sequence."""
        from tracer.engine import first_difference  # noqa: PLC0415

        events = replayed.events if replayed is not None else self.result.doc["events"]
        threads = {str(a.get("name")) for a in self.result.doc.get("actors") or ()
                   if a.get("kind") in ("thread", "process")}
        return first_difference(starts_at_spawn(comparable(self.recorded), threads),
                                starts_at_spawn(comparable(events), threads))


def starts_at_spawn(events: list[dict[str, Any]], threads: set[str]) -> list[dict[str, Any]]:
    """``events`` with each thread's (and process's) ``start`` right after its ``spawn``: a
    free run records a new thread's start when the thread comes, and other threads' events
    may come between; a replay records it at once (its parent waits in ``Thread.start``, no
    actor goes before a started process comes). Where it comes is not the schedule's doing."""
    starts = {e.get("actor"): e for e in events
              if e.get("op") == "start" and e.get("actor") in threads}
    spawned = {e.get("target") for e in events if e.get("op") == "spawn"} & set(starts)
    out: list[dict[str, Any]] = []
    for e in events:
        if e.get("op") == "start" and e.get("actor") in spawned:
            continue
        out.append(e)
        if e.get("op") == "spawn" and e.get("target") in spawned:
            out.append(starts[e.get("target")])
    return out


def replay(program_record: dict[str, Any], events: Sequence[Any], timeout: float,
           trace: str) -> ProgramReplay:
    """Run the program of a trace again, its actors one at a time in the recorded order.
    Raises :class:`ProgramError` when the program is not there or changed since."""
    path, module = program_record.get("path"), program_record.get("module")
    if not isinstance(path, str) and not isinstance(module, str):
        raise ProgramError(f"{trace}: its 'program' names no path nor module to run")
    try:
        program = check_program(path if isinstance(path, str) else None,
                                module if isinstance(module, str) else None,
                                [str(a) for a in program_record.get("argv") or ()])
    except ProgramError as exc:
        raise ProgramError(f"{exc} (the program of {trace}; run tracer replay from the "
                           "folder tracer ran it from)") from None
    if program.record()["sha256"] != program_record.get("sha256"):
        raise ProgramError(f"{program.shown} changed since {trace} was recorded (its sha256 "
                           "differs): a replay needs the same program; record a new trace "
                           f"with: tracer run {program.shown}")
    dicts = [e if isinstance(e, dict) else e.as_dict() for e in events]
    found: list[str | None] = [None]

    def collect(tmp: str) -> None:
        found[0] = read_divergence(os.path.join(tmp, "divergence.txt"))
    result = _run_program(program, timeout, "replay",
                          control={"strategy": "replay", "replay": replay_events(dicts),
                                   "ending": _ending(dicts)},
                          on_done=collect)
    return ProgramReplay(result, dicts, found[0])
