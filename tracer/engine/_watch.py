"""The watchdog: the calling thread watches the run until it is over, timed out, capped, or
stuck.

Every tick (``watch_interval``; or as soon as an actor ends) it checks whether the run is
over, timed out, or stuck. "Stuck" is decided from two snapshots of the actors' state taken
one tick apart: if no actor recorded anything in between, the picture is consistent, and
:func:`tracer.trace.waits.find_blocked` says whether the waiting actors can ever be
freed. An actor the scheduler holds in a spin loop for good (``Scheduler.spinning``) waits
like one with nobody to free it: a livelock is a stall.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tracer.engine._seam import ActorCtx
from tracer.engine._state import RunState
from tracer.engine._stops import raise_pending
from tracer.prims.pool import Pool
from tracer.trace.waits import Blocked, Waiter, WaitState, at_line, find_blocked, source_of_plan

WATCH = 0.01  # watchdog tick, seconds: a deadlock is reported within about three ticks
WATCH_MAX = 0.05  # the tick of runs with thousands of actors, whose snapshots cost more


def watch_interval(actors: int) -> float:
    """The watchdog's tick: 10 ms up to 250 actors, then longer in proportion, so that its
    snapshots (linear in the actors) never take more than a few percent of the run."""
    return min(WATCH_MAX, WATCH * max(1.0, actors / 250))


@dataclass
class Verdict:
    """What the watchdog saw when it stopped watching (filled in as it goes: a stop signal
    may end the watch at any point)."""

    status: str = "ok"
    detail: str = ""
    blocked: list[Blocked] = field(default_factory=list)
    # the picture ``blocked`` was found in: described again once every event is in (a
    # process actor's come in batches), so that the messages name the lines
    picture: WaitState | None = None
    engine: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    detected_at: float | None = None


def _line_of(ctx: ActorCtx, seq: int) -> int | None:
    """The line of ``ctx``'s event ``seq`` (its blocked call: among its last), if recorded."""
    if seq < 0:
        return None
    buf = ctx.buf
    for i in range(len(buf) - 1, -1, -1):
        rec = buf[i]
        if rec[0] <= seq:
            return rec[2].line if rec[0] == seq else None
    return None


class Watchdog:
    """Watches one run (see the module's docstring)."""

    def __init__(self, run: RunState) -> None:
        self.run = run
        self._names_of: dict[str, frozenset[str]] | None = None  # resource -> its names

    def finished(self) -> bool:
        if not all(c.daemon or c.state in ("done", "pending") for c in self.run.ctx.values()):
            return False
        if self.run.scheduler.pending():
            # a replay abandons a daemon where the recording did: after its recorded steps
            return not any(c.state not in ("done", "pending") for c in self.run.ctx.values())
        return True

    def signature(self) -> tuple[int, int]:
        """(events recorded, actors ended) over all actors: changes whenever anyone moves."""
        ctxs = self.run.ctx.values()
        return (sum(c.progress() for c in ctxs), sum(c.state == "done" for c in ctxs))

    def snapshot(self) -> tuple[tuple[Any, ...] | None, WaitState | None]:
        """A picture of who waits for what, or (None, None) when nobody waits for good.

        Who holds what is read first, who waits for what after it: an actor lets go of its
        wait before it holds (an acquire's return, a condition's lock taken back), so that it
        is never seen waiting for what it holds; the reverse order of reading would see the
        wait of before and the hold of after (a process actor changes both in shared memory
        while the parent reads)."""
        holders = {p.name: dict(p.holders) for p in self.run.prims.values() if p.holders}
        key: list[Any] = []
        live: set[str] = set()
        waiting: dict[str, Waiter] = {}
        marks: dict[str, int] = {}
        anyone = False
        spins = self.run.scheduler.spinning()
        for name, c in self.run.ctx.items():
            st = c.state
            if st == "done":
                continue
            now = c.waiting
            key.append((name, st, c.progress(), now))
            live.add(name)
            spin = spins.get(name)
            if spin is not None and now is None:
                waiting[name] = Waiter(name, "spin", ", ".join(spin.watched), "spin",
                                       spin.since, loop=spin.loop, watched=spin.watched)
                anyone = True
            elif st == "pending":
                waiting[name] = Waiter(name, "start", name, "actor")
            elif st == "queued":
                waiting[name] = Waiter(name, "queued", self.run.pool_of[name] or "", "pool")
                anyone = True
            elif now is not None and not now[2]:
                anyone = True
                target, op, _, seq, _mark = now
                if isinstance(target, str):
                    waiting[name] = Waiter(name, op, target, "actor", seq)
                else:
                    res = getattr(target, "resource", target)
                    waiting[name] = Waiter(name, op, target.name, target.ptype, seq, res.name,
                                           target.wait_mode(_mark))
                    marks[name] = _mark
        if not anyone:
            return None, None
        available: set[str] = set()
        running: dict[str, set[str]] = {}  # pool -> its tasks that are running
        for name in live:
            pool_name = self.run.pool_of[name]
            if pool_name is not None and self.run.ctx[name].state == "running":
                running.setdefault(pool_name, set()).add(name)
        counts: dict[tuple[str, str], int] = {}
        for w in waiting.values():
            counts[(w.target, w.op)] = counts.get((w.target, w.op), 0) + 1
        # the scheduler knows who is away in a real call that others end (a barrier's round:
        # they may still be on their way into the real barrier, whose count would say
        # "leaving"); the waiters of a primitive judged together (a barrier) are asked once,
        # so that they are judged on the same count
        is_away = self.run.scheduler.is_away
        together: dict[str, bool] = {}
        for name, w in waiting.items():
            mark = marks.get(name, 0)
            if is_away(name) or w.kind == "spin":
                continue
            if w.kind not in ("actor", "pool") and self.run.prims[w.target].judged_together:
                if w.target not in together:
                    together[w.target] = self.run.prims[w.target].available_for(
                        w.op, counts[(w.target, w.op)], name, mark)
                if together[w.target]:
                    available.add(name)
            elif w.kind == "actor" and w.op == "join":
                if self.run.ctx[w.target].state == "done":
                    available.add(name)
            elif w.kind == "pool":
                pool = self.run.prims[w.target]
                assert isinstance(pool, Pool)
                if len(running.get(w.target, ())) < pool.workers:
                    available.add(name)
            elif w.op != "start" and self.run.prims[w.target].available_for(
                    w.op, counts[(w.target, w.op)], name, mark):
                available.add(name)
        state = WaitState(
            live=live,
            waiting=waiting,
            holders=holders,
            caps={n: self.run.ctx[n].caps for n in live},
            available=available,
            pool_running=running,
            daemons={n for n in live if self.run.ctx[n].daemon},
            source=source_of_plan(self.run.plan.source),
            hold_line=self.hold_line,
            call_line=self.call_line,
        )
        return tuple(key), state

    def call_line(self, actor: str, seq: int) -> int | None:
        """The YAML line of ``actor``'s event ``seq`` (a blocked call), once it is recorded."""
        ctx = self.run.ctx.get(actor)
        return _line_of(ctx, seq) if ctx is not None else None

    def hold_line(self, resource: str, actor: str) -> int | None:
        """The YAML line of the step whereby ``actor`` took its hold on ``resource``: its
        last acquire (or condition wait, which takes the lock back) that returned on it.
        Asked only for a message, once the run is found blocked."""
        ctx = self.run.ctx.get(actor)
        if ctx is None:
            return None
        if self._names_of is None:  # (once: what each resource is taken through)
            by: dict[str, set[str]] = {}
            for p in self.run.prims.values():
                by.setdefault(getattr(p, "resource", p).name, set()).add(p.name)
            self._names_of = {r: frozenset(ns) for r, ns in by.items()}
        names = self._names_of.get(resource, frozenset()) | {resource}
        for _seq, _ts, tag, _payload in reversed(ctx.buf):
            if tag.phase == "return" and tag.target in names and tag.op in ("acquire", "wait") \
                    and tag.result == "ok":
                return tag.line
        return None

    def running_names(self) -> list[str]:
        return [c.name for c in self.run.ctx.values() if c.state in ("running", "queued")]

    def running(self, most: int = 20) -> list[str]:
        """The actors still running, each with what it is doing (the first ``most``)."""
        names = [c for c in self.run.ctx.values() if c.state in ("running", "queued")]
        out = [self.doing(c) for c in names[:most]]
        if len(names) > most:
            out.append(f"and {len(names) - most} more")
        return out

    def doing(self, c: ActorCtx) -> str:
        w = c.waiting
        if c.state == "queued":
            return f"{c.name} (queued in pool {self.run.pool_of[c.name]})"
        if w is None:
            return c.name
        target = w[0] if isinstance(w[0], str) else w[0].name
        where = at_line(source_of_plan(self.run.plan.source), _line_of(c, w[3]))
        return f"{c.name} ({w[1]} {target}{f' at {where}' if where else ''})"

    def watch(self, v: Verdict, deadline: float) -> None:
        """Watch until the run is over (or ``deadline``, a ``time.monotonic()``)."""
        run = self.run
        rt = run.rt
        hosts = list(run.hosts.values())
        scenario = run.plan.scenario
        cap = scenario.event_cap()
        prev: tuple[int, int] | None = None
        tick = watch_interval(len(run.ctx))
        next_look = time.monotonic() + tick
        while True:
            raise_pending()  # a stop signal that came while the run was starting
            for host in hosts:
                host.poll()  # (process actors that ended, or were killed)
            if any("Manager" in m for m in run.lost):
                # the Manager was killed: every shared variable and process queue is
                # gone, nothing the actors do from here can be trusted
                v.status, v.detail = "error", "; ".join(run.lost)
                v.detected_at = rt.clock()
                break
            # a killed process actor: the others go on; if they end, or block for
            # good on what it held, the outcome names the kill as the cause (below)
            if rt.closed:  # the scheduler ended the run (a replay's divergence, --until)
                ended = run.scheduler.outcome()
                if ended is not None:
                    v.status, v.detail = ended
                break
            if self.finished():
                break
            if time.monotonic() >= deadline:
                v.status = "timeout"
                v.detail = (f"the run did not finish within its timeout of "
                            f"{scenario.timeout:g} s; still running: "
                            f"{', '.join(self.running())}")
                v.engine.append(("timeout", {"actors": self.running_names(),
                                             "detail": v.detail}))
                v.detected_at = rt.clock()
                break
            # Cheap first: if nobody recorded anything since the last tick, take the full
            # picture; if still nobody has moved once it is taken, it is consistent (no
            # actor changes what it holds or waits for without recording an event).
            if run.scheduler.is_stuck():
                # an exploring scheduler found nobody who can go on: nothing moves, so
                # one picture is consistent
                before = self.signature()
                _, state = self.snapshot()
                v.blocked = find_blocked(state) if state is not None else []
                v.picture = state
                # still frozen once the picture is taken, and nobody moved while it was: a
                # process actor may have been let go meanwhile (its end or start comes from
                # another thread), and its state is read from shared memory piece by piece
                if v.blocked and self.signature() == before and run.scheduler.is_stuck():
                    v.detected_at = rt.clock()
                    break
                v.blocked = []
                run.scheduler.retry()
            now = time.monotonic()
            if now >= next_look:  # an actor's end wakes the loop early: only to see that
                next_look = now + tick
                sig = self.signature()
                if sig[0] >= cap:
                    v.status = "capped"
                    v.detail = (f"stopped after {cap:,} events (max_events); still "
                                f"running: {', '.join(self.running()) or 'nobody'}")
                    v.engine.append(("capped", {"actors": self.running_names(),
                                                "detail": v.detail}))
                    v.detected_at = rt.clock()
                    run.capped = cap
                    break
                if sig == prev:
                    _, state = self.snapshot()
                    if state is not None and self.signature() == sig:
                        v.blocked = find_blocked(state)
                        v.picture = state
                        if v.blocked:
                            v.detected_at = rt.clock()
                            break
                prev = sig
            run.wake.wait(max(0.001, next_look - time.monotonic()))
            run.wake.clear()
            if len(run.ctx) > 250:
                time.sleep(0.002)  # let a burst of endings pass before counting again
        if v.blocked:
            for host in hosts:
                host.confirm_lost()
            if run.lost:  # a killed child, not yet reaped, is why
                v.blocked = []
                v.status, v.detail = "error", "; ".join(run.lost)
