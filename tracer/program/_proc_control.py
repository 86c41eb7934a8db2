"""One actor at a time across processes: a program's child processes under the host's
:class:`_control.Baton` (``tracer explore prog.py``, ``tracer replay`` of a program trace).

Design. The host listens on a Unix socket in the run's folder (``ctl.sock``: a path, so that
fork, spawn and forkserver children all reach it). Each actor of a child process (the
process's own, and every thread it starts) connects once and asks over its connection, one
question, one answer, as a scenario's process actor asks its parent's scheduler
(:mod:`tracer.engine.schedule._remote`): ``turn`` before each recorded event, ``block`` for a
blocking call (the host's stand-in then runs :meth:`Baton.block` for it, asking the child to
``try`` the real operation), ``sleep`` (virtual time), ``ended``. In the host each remote actor
is a :class:`RemoteActor` with a *stand-in* thread that calls the baton's hooks for it, so the
baton schedules it like any of its threads: it is away when the child's thread sleeps in the
kernel out of a recorded operation (``/proc/PID/task/TID``), and ends when it records its end
or its connection closes (the process died or exited).

A process's actor has its slot from its ``spawn`` on (``expect``): no other actor is chosen
until the child comes (or dies, or takes longer than ``BOOT`` s), so a spawned child that
boots slowly does not change the schedule. What each child holds comes with every question
(its recorder's holders), which the baton's verdict and the watchdog read instead of the
state files a free run's children publish (:func:`live_picture`).
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import threading
from typing import TYPE_CHECKING, Any

from tracer.program._seam import Actor, Attempt, Prim, Scheduler

if TYPE_CHECKING:
    from collections.abc import Callable

    from tracer.program._control import Baton

BOOT = 10.0  # real seconds a started process may take to come to its first event
_HEAD = struct.Struct("!I")


def _send(sock: socket.socket, msg: Any) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEAD.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _recv(sock: socket.socket) -> Any:
    (n,) = _HEAD.unpack(_recv_exact(sock, _HEAD.size))
    return pickle.loads(_recv_exact(sock, n))


# --- the host's side -----------------------------------------------------------------------------

class RemoteActor(Actor):
    """An actor of a child process, as the host's baton sees it."""

    __slots__ = ("alive", "connected", "holders_of", "sending")

    def __init__(self, name: str, kind: str, daemon: bool,
                 alive: Callable[[], bool] | None = None) -> None:
        super().__init__(name, kind, 0, daemon)
        self.alive = alive
        self.connected = False
        self.sending = False  # the stand-in was granted and has not told the child yet
        self.holders_of = 0  # the pid whose holders this actor's process published

    def in_os(self) -> bool:
        """Whether the child's thread sleeps in the kernel (see ``_control._waits_in_os``)."""
        if self.sending or not self.connected:
            return False
        try:
            with open(f"/proc/{self.pid}/task/{self.tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return True
        return stat[stat.rfind(b")") + 2:][:1] != b"R"


class Server:
    """The host's end: a listening socket, a stand-in thread per remote actor."""

    def __init__(self, baton: Baton, folder: str) -> None:
        self.baton = baton
        self.path = os.path.join(folder, "ctl.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(64)
        self.holders: dict[int, dict[str, dict[str, int]]] = {}  # pid -> its holders
        self.turns = 0
        threading.Thread(target=self._accept, name="tracer-proc-accept", daemon=True).start()

    def expect(self, name: str, daemon: bool, alive: Callable[[], bool]) -> RemoteActor:
        """A process actor is about to be started: its slot (fresh) from now on."""
        proxy = RemoteActor(name, "process", daemon, alive)
        self.baton.remote[name] = proxy
        self.baton.started(proxy)
        return proxy

    def forget(self, name: str) -> None:
        """Its start failed: it ends."""
        proxy = self.baton.remote.get(name)
        if proxy is not None:
            proxy.state = "done"
            self.baton.ended(proxy)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="tracer-proc-stand-in",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        proxy: RemoteActor | None = None
        try:
            _, name, kind, daemon, pid, tid = _recv(conn)
            baton = self.baton
            known = baton.remote.get(name)
            proxy = known if isinstance(known, RemoteActor) else None
            if proxy is None or proxy.connected:  # (a thread the child started)
                if name in baton.slots:  # (as the trace names it: see _launch._merge)
                    name = f"{name}@{pid}"
                proxy = RemoteActor(name, kind, daemon)
                proxy.pid, proxy.tid = pid, tid
                proxy.connected = True
                baton.remote[name] = proxy
                baton.started(proxy)
            else:
                proxy.pid, proxy.tid = pid, tid
                proxy.connected = True
            _send(conn, "ok")
            while True:
                msg = _recv(conn)
                what = msg[0]
                if what == "ended":
                    if proxy.kind == "process":  # (see _leaving)
                        self._leaving(proxy)
                        _recv(conn)  # (until the process is gone: EOF)
                    break
                self._note(proxy, msg[-1])
                if what == "turn":
                    proxy.access = bool(msg[1])
                    baton.turn(proxy)
                    proxy.access = False
                    self._go(conn, proxy, "go")
                elif what == "sleep":
                    baton.sleep(proxy, float(msg[1]), lambda s: None)
                    self._go(conn, proxy, "go")
                elif what == "block":
                    target = self._target(msg[1])

                    def attempt(t: float | None, conn: socket.socket = conn,
                                proxy: RemoteActor = proxy) -> bool:
                        _send(conn, ("try", t))
                        answer = _recv(conn)
                        self._note(proxy, answer[-1])
                        return bool(answer[1])
                    ok = baton.block(proxy, target, str(msg[2]), attempt, msg[3])
                    self._go(conn, proxy, ("done", ok))
        except (EOFError, OSError, pickle.UnpicklingError, ValueError):
            pass
        finally:
            conn.close()
            if proxy is not None and proxy.state != "done":
                proxy.state = "done"
                proxy.waiting = None
                self.baton.ended(proxy)

    def _leaving(self, proxy: RemoteActor) -> None:
        """A process's actor recorded its end; the process is not gone yet: what it put into a
        queue may still be on its way (by the queue's feeder thread, which its exit waits
        for). It counts as in a real wait until it is gone (its connection closes), so that
        nobody is judged stuck meanwhile, and a get of what it put is tried again then."""
        baton = self.baton
        with baton.mu:
            s = baton.slots.get(proxy.name)
            if s is not None:
                baton.into_real(s)

    def _go(self, conn: socket.socket, proxy: RemoteActor, answer: Any) -> None:
        proxy.sending = True
        try:
            _send(conn, answer)
        finally:
            proxy.sending = False
        self.turns += 1

    def _note(self, proxy: RemoteActor, info: Any) -> None:
        """What a question carries: the child's holders, the actor's last event."""
        holders, last = info
        self.holders[proxy.pid] = holders
        if last is not None:
            proxy.buf[:] = [last]

    def _target(self, desc: Any) -> Any:
        if isinstance(desc, str):
            return desc
        name, ptype, options = desc
        p = self.baton.host.rec.prims.get(name)
        return p if p is not None else Prim(name, ptype, None, options)

    def picture(self) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]], tuple[Any, ...]]:
        """(holders, the remote actors' states, progress) for the watchdog and the verdict."""
        holders: dict[str, dict[str, int]] = {}
        for h in list(self.holders.values()):
            for r, who in h.items():
                mine = holders.setdefault(r, {})
                for k, v in who.items():
                    mine[k] = mine.get(k, 0) + v
        baton = self.baton
        states = []
        for a in list(baton.remote.values()):
            w = a.waiting
            if w is not None and isinstance(w[0], Prim) and w[0].type == "condition" and \
                    w[1] == "wait":  # (its lock is given back in the wait, in the child)
                lock = w[0].options.get("lock") or w[0].name
                if a.name in holders.get(lock, {}):
                    holders[lock] = {k: v for k, v in holders[lock].items() if k != a.name}
            waiting: list[Any] | None = None
            if w is not None:
                target, op, timed = w
                last = a.buf[-1] if a.buf else None
                site = last[7] if last is not None else None
                s = baton.slots.get(a.name)
                avail = s is None or s.state != "blocked" or s.tried < baton.version
                if isinstance(target, str):
                    waiting = [target, "actor", op, timed, target, site, False]
                else:
                    waiting = [target.name, target.type, op, timed,
                               target.options.get("lock") or target.name, site, avail]
            states.append({"name": a.name, "state": a.state, "daemon": a.daemon,
                           "waiting": waiting})
        return holders, states, (self.turns, len(states))


_SERVER: Server | None = None


def server(baton: Baton, folder: str) -> Server:
    """The host's server (made at the first process the program starts under a baton)."""
    global _SERVER
    if _SERVER is None or _SERVER.baton is not baton:
        _SERVER = Server(baton, folder)
    return _SERVER


def live_picture() -> Any:
    """The server's picture, or None when no process runs under a baton here."""
    return _SERVER.picture() if _SERVER is not None else None


# --- the child's side ----------------------------------------------------------------------------

class RemoteBaton(Scheduler):
    """A child process's scheduler: each of its actors asks the host's baton over a
    connection of its own (see the module's docstring)."""

    tries_first = False  # (the host's baton tries each blocking op: see Baton)

    def __init__(self, path: str, rec: Any, lost: Callable[[], None]) -> None:
        self.path = path
        self.rec = rec
        self.lost = lost  # the host is gone: write the events and leave
        self.links: dict[str, socket.socket] = {}
        self.keep: list[socket.socket] = []

    def _info(self, actor: Actor) -> Any:
        holders = {k: dict(v) for k, v in list(self.rec.holders.items()) if v}
        return holders, (actor.buf[-1] if actor.buf else None)

    def _link(self, actor: Actor) -> socket.socket:
        sock = self.links.get(actor.name)
        if sock is None:
            self.started(actor)
            sock = self.links[actor.name]
        return sock

    def _ask(self, actor: Actor, *msg: Any) -> Any:
        try:
            sock = self._link(actor)
            _send(sock, (*msg, self._info(actor)))
            return _recv(sock)
        except (EOFError, OSError):
            self.lost()
            raise SystemExit(0) from None

    def started(self, actor: Actor) -> None:
        if actor.kind == "coroutine" or actor.name in self.links:
            return
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.path)
            _send(sock, ("hello", actor.name, actor.kind, actor.daemon, os.getpid(),
                         threading.get_native_id()))
            _recv(sock)
        except (EOFError, OSError):
            self.lost()
            raise SystemExit(0) from None
        self.links[actor.name] = sock

    def turn(self, actor: Actor) -> None:
        if actor.kind == "coroutine":
            return
        self._ask(actor, "turn", actor.access)

    def block(self, actor: Actor, target: Any, op: str, attempt: Attempt,
              timeout: float | None) -> bool:
        if actor.kind == "coroutine":
            return attempt(timeout)
        desc = target if isinstance(target, str) else (target.name, target.type,
                                                        dict(target.options))
        before = actor.waiting
        actor.waiting = (target, op, timeout is not None)
        try:
            answer = self._ask(actor, "block", desc, op, timeout)
            sock = self.links[actor.name]
            while isinstance(answer, tuple) and answer[0] == "try":
                ok = bool(attempt(answer[1]))
                try:
                    _send(sock, ("tried", ok, self._info(actor)))
                    answer = _recv(sock)
                except (EOFError, OSError):
                    self.lost()
                    raise SystemExit(0) from None
            return bool(answer[1])
        finally:
            actor.waiting = before

    def sleep(self, actor: Actor, seconds: float, real: Callable[[float], None]) -> None:
        if actor.kind == "coroutine":
            real(seconds)
            return
        self._ask(actor, "sleep", seconds)

    def ended(self, actor: Actor) -> None:
        sock = self.links.pop(actor.name, None)
        if sock is None:
            return
        try:
            _send(sock, ("ended",))
        except OSError:
            pass
        if actor.kind == "process":  # (open until the process is gone: see Server._leaving)
            self.keep.append(sock)
        else:
            sock.close()


__all__ = ["BOOT", "RemoteActor", "RemoteBaton", "Server", "live_picture", "server"]
