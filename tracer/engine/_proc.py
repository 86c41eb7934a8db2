"""Process actors: child processes over real ``multiprocessing`` primitives.

Design. A scenario with process actors shares, with every process of the run:

- one **seq counter** in shared memory behind a ``multiprocessing.Lock``: each event of every
  actor, in the parent or a child, takes its seq there, so the total order is consistent with
  causality across processes exactly as it is across threads;
- one **board**: a shared array with a row per actor (state, number of events, what it waits
  for, what it may still do, pid, tid), written only by the process that runs the actor. The
  parent's watchdog reads it the way it reads thread actors' state;
- the **tallies and holders** of every primitive, as shared arrays (``SharedCounts``);
- the **abort flag**, which makes a child's next seam call or poll raise ``Abort``.

A child records into its own buffer and ships it to the parent over a pipe every few thousand
events and at its end; a collector thread in the parent receives. A child killed by a signal
loses at most its last unshipped batch; the parent records its ``end`` as ``error``.

Children start with the ``forkserver`` method on Linux (``spawn`` elsewhere): the server forks
children from a clean, thread-free process with tracer preloaded, so starting one costs
milliseconds, and nothing depends on fork copying the parent's threads. ``fork`` and ``spawn``
work too (``TRACER_START_METHOD`` or ``tracer run --start-method``).
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.pool
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from functools import partial
from multiprocessing import forkserver, resource_tracker, util
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_conns
from typing import Any

from tracer.engine._seam import (
    POLL,
    Abort,
    ActorCtx,
    Runtime,
    Tag,
)
from tracer.engine.schedule import Scheduler
from tracer.prims import _shell as P

START_METHODS = ("forkserver", "spawn", "fork")
FLUSH_EVERY = 4096  # events a child buffers before it ships them to the parent

# board columns
STATE, PROGRESS, W_TARGET, W_OP, W_TIMEOUT, W_SEQ, W_MARK, CAPS, PID, TID = range(10)
ROW = 10
STATES = ("pending", "queued", "running", "done", "starting")
OPS = ("acquire", "wait", "put", "get", "recv", "send", "join")


class RunFault(Exception):
    """The run cannot be set up: a fault outside the scenario (a wrong TRACER_START_METHOD, a
    Manager process that died while it was started). The CLI says so in one line, exit 2."""


def default_start_method() -> str:
    env = os.environ.get("TRACER_START_METHOD")
    if env:
        return env
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


def get_context(method: str | None = None) -> Any:
    """The multiprocessing context of a run (forkserver with tracer preloaded)."""
    m = method or default_start_method()
    if m not in START_METHODS:
        where = "" if method else " (from the environment variable TRACER_START_METHOD)"
        raise RunFault(f"the start method of process actors is {m!r}{where}, which is not one "
                       f"of {', '.join(START_METHODS)}")
    ctx = mp.get_context(m)
    if m == "forkserver":
        # (_fs_preload first: the forkserver ignores the group's SIGTERM and SIGHUP)
        ctx.set_forkserver_preload(["tracer.engine._fs_preload", "tracer.engine.actors.process"])
    _start_resource_tracker()
    return ctx


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with SIGHUP ignored, which it inherits (it
    ignores SIGINT and SIGTERM itself, not SIGHUP: a closing terminal would kill it, and it
    would print tracebacks). Only while this is the process's one thread: a signal that
    another thread took meanwhile would be lost."""
    if threading.active_count() > 1 or threading.current_thread() is not threading.main_thread():
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})  # kept pending, not lost
    try:
        old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            resource_tracker.ensure_running()
        finally:
            signal.signal(signal.SIGHUP, old)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


class SharedCounts(MutableMapping[str, int]):
    """actor name -> count, in shared memory; a count of 0 means absent. Each actor only
    writes its own cell, so no lock is needed (an aligned 8-byte store is atomic)."""

    def __init__(self, array: Any, index: dict[str, int]) -> None:
        self.array = array
        self.index = index

    def __getitem__(self, key: str) -> int:
        v = int(self.array[self.index[key]])
        if not v:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: int) -> None:
        self.array[self.index[key]] = value

    def __delitem__(self, key: str) -> None:
        i = self.index[key]
        if not self.array[i]:
            raise KeyError(key)
        self.array[i] = 0

    def __iter__(self) -> Iterator[str]:
        arr = self.array
        return iter([n for n, i in self.index.items() if arr[i]])

    def __len__(self) -> int:
        return sum(1 for v in self.array[:] if v)

    def get(self, key: str, default: Any = None) -> Any:  # fast path of the mixin's get
        v = int(self.array[self.index[key]])
        return v if v else default


class SharedSeq:
    """The run's seq counter when processes take part: shared memory and a lock."""

    def __init__(self, ctx: Any) -> None:
        self.lock = ctx.Lock()
        self.value = ctx.RawValue("q", 0)

    def __next__(self) -> int:
        with self.lock:
            v = int(self.value.value)
            self.value.value = v + 1
        return v

    def __iter__(self) -> SharedSeq:
        return self


class ClosedFlag:
    """The run's abort flag as an event that sleeping actors wait on: it polls the shared
    ``closed`` byte. (A ``multiprocessing.Event`` would hang the parent for good: its ``set``
    waits until every process sleeping on it has woken, and a killed one never does.)"""

    def __init__(self, closed: Any) -> None:
        self.closed = closed

    def is_set(self) -> bool:
        return bool(self.closed.value)

    def set(self) -> None:
        self.closed.value = 1

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the run was closed within ``timeout`` seconds (checked every POLL)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.closed.value:
            left = POLL if deadline is None else min(POLL, deadline - time.monotonic())
            if left <= 0:
                return False
            time.sleep(left)
        return True


class Shared:
    """Everything a child needs to take part in the run (passed when it is started)."""

    def __init__(self, ctx: Any, actors: list[str], objects: list[str],
                 variables: Sequence[str] = ()) -> None:
        self.seq = SharedSeq(ctx)
        # a lock per shared variable, for every actor of every kind: an access and its seq
        # are taken under it (see _compile's "Shared variables")
        self.var_locks = {v: ctx.Lock() for v in variables}
        self.closed = ctx.RawValue("b", 0)
        self.abort_event = ClosedFlag(self.closed)
        self.parent = os.getpid()  # the runner: its children stop if it dies
        self.actors = actors
        self.actor_index = {n: i for i, n in enumerate(actors)}
        self.objects = objects  # primitives, then actors: what a board row may wait for
        self.object_index = {n: i for i, n in enumerate(objects)}
        self.board = ctx.RawArray("q", len(actors) * ROW)
        self._ctx = ctx

    def counts(self) -> SharedCounts:
        return SharedCounts(self._ctx.RawArray("q", len(self.actors)), self.actor_index)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_ctx", None)
        return state


def share_counts(prim: P.Prim, shared: Shared) -> None:
    """Move a primitive's holders and tallies into shared memory."""
    prim.holders = shared.counts()  # type: ignore[assignment]
    for value in vars(prim).values():
        if isinstance(value, P.Tally):
            value.cells = shared.counts()  # type: ignore[assignment]


class ChildRuntime(Runtime):
    """A child's runtime: seq and the abort flag are the run's shared ones."""

    def __init__(self, shared: Shared, t0: float, scheduler: Scheduler) -> None:
        self.shared = shared
        super().__init__(scheduler)
        scheduler.attach(self, _nothing)
        self.seq = shared.seq  # type: ignore[assignment]
        self.var_locks = shared.var_locks
        self.t0 = t0
        self.shared = shared
        self.abort_event = shared.abort_event  # type: ignore[assignment]

    @property
    def closed(self) -> bool:
        return bool(self.shared.closed.value)

    @closed.setter
    def closed(self, value: bool) -> None:
        # only the parent opens a run; a child (a late pool task too) may only close it
        if value:
            self.shared.closed.value = 1


def _nothing() -> None:
    """(A child has no watchdog to wake.)"""


class ProcActorCtx(ActorCtx):
    """A process actor, seen from its child (which runs it) or from the parent (which
    watches it): its state lives on the board, its events are shipped in batches."""

    __slots__ = ("board", "caps_ids", "caps_table", "conn", "objects", "prims", "proc", "row",
                 "shared_")

    def __init__(self, rt: Runtime, name: str, daemon: bool, shared: Shared,
                 prims: dict[str, P.Prim]) -> None:
        # the base constructor resets state, waiting, caps, pid and tid: let it write into a
        # scratch board, so the shared row (zeros at first: pending, not waiting) is untouched
        self.board = defaultdict(int)
        self.row = shared.actor_index[name] * ROW
        self.shared_ = shared
        self.objects = shared.objects
        self.prims = prims
        self.caps_table: list[frozenset[tuple[str, str]]] = [frozenset()]
        self.caps_ids: dict[frozenset[tuple[str, str]], int] = {frozenset(): 0}
        self.conn: Connection | None = None
        self.proc: Any = None
        super().__init__(rt, name, "process", daemon)
        self.board = shared.board

    def register_caps(self, seen: list[frozenset[tuple[str, str]]]) -> None:
        """Number the caps values in compile order: parent and child compile the same program,
        so they number them alike and the board can carry an index."""
        for caps in seen:
            if caps not in self.caps_ids:
                self.caps_ids[caps] = len(self.caps_table)
                self.caps_table.append(caps)

    # --- board-backed state
    @property
    def state(self) -> str:
        return STATES[int(self.board[self.row + STATE])]

    @state.setter
    def state(self, value: str) -> None:
        self.board[self.row + STATE] = STATES.index(value)

    @property
    def waiting(self) -> tuple[Any, str, bool, int, int] | None:
        b, r = self.board, self.row
        t = int(b[r + W_TARGET]) - 1
        if t < 0:
            return None
        name = self.objects[t]
        target: Any = self.prims.get(name, name)
        return (target, OPS[int(b[r + W_OP])], bool(b[r + W_TIMEOUT]), int(b[r + W_SEQ]),
                int(b[r + W_MARK]))

    @waiting.setter
    def waiting(self, value: tuple[Any, str, bool, int, int] | None) -> None:
        b, r = self.board, self.row
        if value is None:
            b[r + W_TARGET] = 0
            return
        target, op, has_timeout, seq, mark = value
        name = target if isinstance(target, str) else target.name
        b[r + W_OP] = OPS.index(op)
        b[r + W_TIMEOUT] = 1 if has_timeout else 0
        b[r + W_SEQ] = seq
        b[r + W_MARK] = mark
        b[r + W_TARGET] = self.shared_.object_index[name] + 1  # last: the others are set

    @property
    def caps(self) -> frozenset[tuple[str, str]]:
        return self.caps_table[int(self.board[self.row + CAPS])]

    @caps.setter
    def caps(self, value: frozenset[tuple[str, str]]) -> None:
        i = self.caps_ids.get(value)
        if i is None:
            i = self.caps_ids[value] = len(self.caps_table)
            self.caps_table.append(value)
        self.board[self.row + CAPS] = i

    @property
    def pid(self) -> int:
        return int(self.board[self.row + PID])

    @pid.setter
    def pid(self, value: int) -> None:
        self.board[self.row + PID] = value

    @property
    def tid(self) -> int:
        return int(self.board[self.row + TID])

    @tid.setter
    def tid(self, value: int) -> None:
        self.board[self.row + TID] = value

    def progress(self) -> int:
        return int(self.board[self.row + PROGRESS])

    # --- recording in the child
    def emit_free(self, tag: Tag, payload: dict[str, Any] | None = None) -> int:
        # (the seq through the scheduler's turn, as under a scheduler: taking it directly
        # from the shared counter narrows the time between a queue's real get and its return
        # in a way that made replays of Manager queues diverge more often; see the note on
        # recorded gets out of order in docs/formats.md §5)
        return self.emit_scheduled(tag, payload)

    def emit_scheduled(self, tag: Tag, payload: dict[str, Any] | None = None) -> int:
        rt = self.rt
        if rt.closed:
            raise Abort
        # the scheduler gives the seq (a replay's and an exploration's: the parent's, with the
        # turn); a turn given is recorded, even if the run closes now: the scheduler counted
        # it (a replay ends once the recording's last turn was given)
        seq = rt.scheduler.turn(self, tag)
        # shipped before the append, never after: the last event stays in the buffer (a
        # step's ``as`` reads its result there, a read fills its payload after the turn)
        if len(self.buf) >= FLUSH_EVERY:
            self.flush()
        self.buf.append((seq, self._clock(), tag, payload))
        self.board[self.row + PROGRESS] += 1
        return seq

    def emit_read(self, tag: Tag, fetch: Callable[[], Any],
                  extra: dict[str, Any] | None = None) -> Any:
        """A read: the value is read once the turn came and the seq was taken (not before)."""
        rt = self.rt
        if rt.closed:
            raise Abort
        seq = rt.scheduler.turn(self, tag)
        # a turn given is recorded, even if the run closes now: the scheduler
        # counted it (a replay ends once the recording's last turn was given)
        if len(self.buf) >= FLUSH_EVERY:
            self.flush()
        value = fetch()
        self.buf.append((seq, self._clock(), tag,
                         {"value": value} if extra is None else {**extra, "value": value}))
        self.board[self.row + PROGRESS] += 1
        return value

    def batch(self) -> list[tuple[int, float, tuple[Any, ...], Any]]:
        """The buffered events in a form that pickles (tags as their fields)."""
        return [(s, ts, (t.actor, t.op, t.target, t.phase, t.result, t.line), p)
                for s, ts, t, p in self.buf]

    def flush(self) -> None:
        """Ship the buffered events to the parent (Abort if it is gone: the run is over)."""
        if self.buf and self.conn is not None:
            try:
                self.conn.send(self.batch())
            except (OSError, ValueError):
                self.rt.closed = True  # the parent died: every process of the run stops
                raise Abort from None
            self.buf.clear()


# ---------------------------------------------------------------------------------------------
# the child side


def ignore_sigint() -> None:
    """Ctrl-C reaches the whole process group, and so do SIGTERM and SIGHUP sent to it (by
    ``timeout``, a closing terminal): only the parent decides how the run ends (it aborts the
    run and still writes the trace), so children and the Manager ignore them. The parent
    stops a child that will not end with SIGKILL, and the Manager by its shutdown message."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)


class KillingPool(mp.pool.Pool):
    """A ``multiprocessing.Pool`` whose ``terminate`` kills its workers (SIGKILL): they ignore
    SIGTERM (see :func:`ignore_sigint`), one still starting inherits that from the
    forkserver, and a worker that would not die would hang ``terminate`` for good."""

    @staticmethod
    def Process(ctx: Any, *args: Any, **kwds: Any) -> Any:
        proc = ctx.Process(*args, **kwds)
        proc.terminate = proc.kill
        return proc


def manager_init(parent: int) -> None:
    """The Manager process's start: it ignores the signals of the group (see
    :func:`ignore_sigint`), shows up as ``tracer:Manager`` in ps, and exits if the runner
    (``parent``) dies: nobody else would ever shut it down."""
    ignore_sigint()
    name_process("tracer:Manager")
    watch_parent(parent, partial(os._exit, 0))


def exit_with_parent(parent: int) -> None:
    """Initializer of explore's --jobs workers: they ignore the group's signals and exit if
    the command (``parent``) is killed, like every process of a run."""
    ignore_sigint()
    watch_parent(parent, partial(os._exit, 0))


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, killed and not yet reaped, does not)."""
    try:
        # bytes: the name in it is the process's, which may be any text (tracer:甲)
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b") ", 1)[-1][:1] != b"Z"
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def watch_parent(pid: int, on_death: Callable[[], object], every: float = 0.25) -> None:
    """A daemon thread that calls ``on_death`` once process ``pid`` (the runner) is gone:
    a runner killed with SIGKILL cannot stop its children, so they stop themselves."""
    def watch() -> None:
        while alive(pid):
            time.sleep(every)  # polling: the death of a non-parent process sends no signal
        on_death()
    threading.Thread(target=watch, name="tracer-watch-parent", daemon=True).start()


def orphaned(shared: Shared, worker: bool) -> None:
    """The runner died: close the run (every child's next seam call or poll aborts, and its
    end is quiet); a pool worker, which would wait for tasks for ever, then exits."""
    shared.closed.value = 1
    if worker:
        time.sleep(1.0)  # its task, if any, aborts meanwhile
        os._exit(0)


def name_process(title: str) -> None:
    """Show the actor's name in ps and top (Linux: the first 15 bytes); best effort."""
    try:
        with open("/proc/self/comm", "w", encoding="utf-8") as f:
            f.write(title.encode()[:15].decode(errors="ignore"))
    except OSError:
        pass


Batch = list[tuple[int, float, tuple[Any, ...], Any]]  # events a child ships to the parent


# ---------------------------------------------------------------------------------------------
# the parent side


class Collector:
    """A parent thread that receives the children's event batches (an exploration's reused
    worker thread, when it has them)."""

    def __init__(self, rt: Runtime, ctxs: dict[str, ActorCtx]) -> None:
        self.rt = rt
        self.ctxs = ctxs
        self.conns: dict[Connection, str] = {}
        self.results: dict[str, tuple[str | None, str | None]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: Any = None  # a threading.Thread, or a worker's Task

    def add(self, conn: Connection, name: str) -> None:
        with self.lock:
            self.conns[conn] = name

    def start(self, workers: Any = None) -> None:
        if workers is not None:
            self.thread = workers.run(self._serve)
            return
        self.thread = threading.Thread(target=self._serve, name="tracer-actor:(collector)",
                                       daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            with self.lock:
                conns = list(self.conns)
            if not conns:
                if self.stopping.is_set():
                    return
                self.stopping.wait(0.01)
                continue
            for conn in wait_conns(conns, timeout=0.05):
                assert isinstance(conn, Connection)
                name = self.conns[conn]
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    with self.lock:
                        del self.conns[conn]
                    continue
                if isinstance(msg, tuple) and msg and msg[0] == "result":
                    self.results[name] = (msg[1], msg[2])
                    continue
                self.receive(name, msg)

    def receive(self, name: str, batch: Batch) -> None:
        """Take a batch of a child's events into the parent's view of that actor."""
        tag = self.rt.tag
        self.ctxs[name].buf.extend((s, ts, tag(*key), p) for s, ts, key, p in batch)

    def stop(self, timeout: float) -> None:
        """Receive what is still in flight, then end (once every child's pipe is closed)."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)


def _reap_helper(pid: int, grace: float) -> None:
    """Wait (at most ``grace`` seconds) for a helper process of multiprocessing to exit once
    its pipe is closed; kill it if it will not."""
    deadline = time.monotonic() + grace
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.005)  # it is exiting: its pipe has just been closed


def stop_helpers(grace: float = 5.0) -> None:
    """At the end of a command: shut down what multiprocessing started for the runs (the
    Manager by its finalizer, the forkserver, the resource tracker), so that no process of
    this command outlives it. They would go on their own a moment after it exits; a command
    stopped by SIGTERM must not leave them to chance. Nothing to do if no process actor ran."""
    util._run_finalizers(0)  # type: ignore[attr-defined]  # Managers, semaphores' names
    fs: Any = forkserver._forkserver
    with fs._lock:
        pid = fs._forkserver_pid
        if pid is not None:
            os.close(fs._forkserver_alive_fd)  # EOF tells it to stop
            fs._forkserver_alive_fd = None
            _reap_helper(pid, grace)
            fs._forkserver_pid = None
            address = fs._forkserver_address
            if address and not util.is_abstract_socket_namespace(address):
                try:
                    os.unlink(address)
                except OSError:
                    pass
            fs._forkserver_address = None
    rt: Any = resource_tracker._resource_tracker
    with rt._lock:
        if rt._fd is not None and rt._pid is not None:
            os.close(rt._fd)  # EOF: it cleans up and exits
            rt._fd = None
            _reap_helper(rt._pid, grace)
            rt._pid = None
