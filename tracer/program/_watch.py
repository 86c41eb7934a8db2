"""The host's watchdog: a thread of tracer's own that ends the run when it is over.

Every tick it looks, in order: has the command asked the run to stop (a byte on the control
pipe: Ctrl-C, SIGTERM), is the timeout past, are the program's actors blocked for good? The
last is judged as for scenarios, by :func:`tracer.trace.waits.find_blocked` over a picture of
who waits for what and who holds what, with one difference: a program's remaining code is not
known, so every live actor may still do anything (set any event, put into any queue) -- except
release a lock it does not hold. A lock cycle is a deadlock as soon as it forms; an event or
queue nobody can serve is a stall only once every live actor waits. A picture is judged only
when it stayed the same for three ticks (nobody recorded anything meanwhile).
"""

from __future__ import annotations

import os
import select
import threading
from typing import TYPE_CHECKING, Any

from tracer.program import _patch_mp
from tracer.program._seam import Prim

if TYPE_CHECKING:
    from tracer.program._host import Host
    from tracer.trace.waits import WaitState

TICK = 0.01
STEADY = 3  # ticks a picture must last before it is judged
SETTLE = 0.1  # seconds a picture with other waits than for locks must last
_VERBS = ("set", "put", "get", "release", "notify", "notify_all", "wait", "send", "recv",
          "count_down")


class Watchdog:
    def __init__(self, host: Host, timeout: float, ctrl: int | None) -> None:
        self.host = host
        self.timeout = timeout
        self.limit = timeout  # (the timeout the messages say: an exploration's host keeps it)
        self.ctrl = ctrl
        self.thread = threading.Thread(target=self.loop, name="tracer-watchdog", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def loop(self) -> None:
        # (imported here, by this thread, while the program starts: the wait-for reasoning
        # reads the primitive types' declarations, which take a while to import)
        from tracer.trace.waits import find_blocked  # noqa: PLC0415
        rec = self.host.rec
        deadline = rec.t0 + self.timeout
        last: Any = None
        steady = 0
        since = 0.0
        while not self.host.finished:
            if self.ctrl is not None:
                ready, _, _ = select.select([self.ctrl], [], [], TICK)
                if ready:
                    why = os.read(self.ctrl, 64).decode(errors="replace").strip() or "stop"
                    self.host.finish("interrupted", f"interrupted by {why}")
                    return
            else:
                threading.Event().wait(TICK)
            if rec.clock() >= deadline:
                self.host.finish("timeout", self.timeout_detail(), self.timeout_payload(),
                                 "timeout")
                return
            progress = (rec.progress(), _patch_mp.read_remote())
            state = self.picture()
            if state is None:
                last, steady = None, 0
                continue
            key = (progress, tuple(sorted(state.waiting)))
            if key != last:
                last, steady, since = key, 1, rec.clock()
                continue
            steady += 1
            if steady < STEADY or not _patch_mp.confirmed_since(since):
                continue
            blocked = find_blocked(state)
            if not blocked:
                continue
            if rec.clock() - since < SETTLE and not all(
                    w.get("op") == "acquire" and w.get("kind") in ("lock", "rlock")
                    for b in blocked for w in b.waits):
                # a wait that has just ended in the OS shows until its thread gets the GIL
                # back; a lock shows it (held, no holder yet), an event or a queue cannot:
                # such a picture must last a little longer before it is believed
                continue
            b = blocked[0]
            self.host.finish(b.kind, "; ".join(x.message for x in blocked),
                             {"actors": list(b.actors), "objects": list(b.objects),
                              "detail": "; ".join(x.message for x in blocked),
                              "waits": [dict(w) for w in b.waits]}, b.kind)
            return

    def picture(self) -> WaitState | None:
        """Who waits for what (untimed) and who holds what, or None when nobody waits."""
        from tracer.trace.waits import Waiter, WaitState  # noqa: PLC0415
        rec = self.host.rec
        holders = {r: dict(h) for r, h in list(rec.holders.items()) if h}
        live: set[str] = set()
        waiting: dict[str, Waiter] = {}
        available: set[str] = set()
        # (the program's other processes, as they published themselves: see _patch_mp)
        remote_holders, remote = _patch_mp.remote_picture()
        for r, h in remote_holders.items():
            holders.setdefault(r, {}).update(h)
        remote_prims: set[str] = set()
        for ra in remote:
            live.add(ra["name"])
            w = ra["waiting"]
            if w is None or w[3]:
                continue
            target, ptype, op, _, resource, site, avail = w
            if ptype == "actor":
                waiting[ra["name"]] = Waiter(ra["name"], op, target, "actor", None, line=site)
                other = _patch_mp.REMOTE.get(target)
                if target not in rec.actors and (other is None or other["state"] == "done"):
                    avail = True
            else:
                remote_prims.add(target)
                waiting[ra["name"]] = Waiter(ra["name"], op, target, ptype, None, resource,
                                             line=site)
                if op == "acquire" and ptype in ("lock", "rlock") and not holders.get(resource):
                    avail = True
            if avail:
                available.add(ra["name"])
        for a in list(rec.actors.values()):
            if a.state == "done":
                continue
            live.add(a.name)
            w = a.waiting
            if w is None or w[2]:
                continue
            target, op, _ = w
            last = a.buf[-1] if a.buf else None
            call_seq = last[0] if last is not None and last[5] == "call" else None
            site = last[7] if last is not None else None
            if isinstance(target, str):  # a join
                waiting[a.name] = Waiter(a.name, op, target, "actor", call_seq, line=site)
                joined = rec.actors.get(target)
                far = _patch_mp.REMOTE.get(target)
                if (joined is None or joined.state == "done") and \
                        (far is None or far["state"] == "done"):
                    available.add(a.name)
                continue
            assert isinstance(target, Prim)
            resource = target.options.get("lock") or target.name
            waiting[a.name] = Waiter(a.name, op, target.name, target.type, call_seq, resource,
                                     line=site)
            if target.available(op):
                available.add(a.name)
            elif op == "acquire" and target.type in ("lock", "rlock") and \
                    not holders.get(resource):
                available.add(a.name)  # (held, and its holder not recorded yet: in between)
        if not waiting:
            return None
        caps = frozenset((v, p) for p in [*rec.prims, *remote_prims] for v in _VERBS)
        return WaitState(live=live, waiting=waiting, holders=holders,
                         caps=dict.fromkeys(live, caps), available=available,
                         daemons={a.name for a in rec.actors.values() if a.daemon}
                         | {ra["name"] for ra in remote if ra["daemon"]},
                         hold_line=self.hold_line)

    def hold_line(self, resource: str, actor: str) -> Any:
        """Where ``actor`` took ``resource`` (its last acquire of it that returned ok)."""
        a = self.host.rec.actors.get(actor)
        if a is None:
            return None
        for e in reversed(a.buf):
            if e[3] == "acquire" and e[4] == resource and e[5] == "return" and e[6] == "ok":
                return e[7]
        return None

    def doing(self) -> dict[str, str]:
        out = {}
        for a in list(self.host.rec.actors.values()):
            if a.state == "done":
                continue
            w = a.waiting
            last = a.buf[-1] if a.buf else None
            where = f" ({last[7]})" if last is not None and last[7] else ""
            if w is not None:
                target = w[0] if isinstance(w[0], str) else w[0].name
                out[a.name] = f"{a.name} waits in {w[1]} {target}{where}"
            else:
                out[a.name] = f"{a.name} runs (last at {last[7]})" if last and last[7] \
                    else f"{a.name} runs"
        return out

    def timeout_detail(self) -> str:
        doing = self.doing()
        return (f"the program did not end within its timeout of {self.limit:g} s"
                + (": " + "; ".join(doing.values()) if doing else ""))

    def timeout_payload(self) -> dict[str, Any]:
        doing = self.doing()
        return {"actors": sorted(doing), "detail": self.timeout_detail()}
