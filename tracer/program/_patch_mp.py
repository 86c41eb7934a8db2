"""Record ``multiprocessing`` in a traced program: processes, their primitives, and children.

Design. A ``Process`` the user's code makes (or a ``Pool``'s worker) is an actor of kind
``process``: ``spawn`` is recorded in the parent at ``start()``, ``start``/``end`` in the
child, ``join`` in the parent. The child records into a fresh :class:`Recorder` of its own
(under fork the parent's buffers, copied by fork, are dropped, never written twice) with the
host's ``t0`` (``perf_counter`` is CLOCK_MONOTONIC: one clock for every process, so the
events of all processes merge by ``ts``), and writes them to ``events-<pid>.json`` beside the
host's events file when it ends, when it is terminated (SIGTERM) and when the host asks (a
``stop`` file, seen by a small thread of the child's own: the child's main thread may be
blocked in a C call). The same thread publishes what the child's actors hold and wait for in
``state-<pid>.json``, which the host's watchdog reads, so that a deadlock across processes is
seen live.

Under fork the patches are inherited; under spawn the child's command line imports
:mod:`tracer.program._mp_boot` first (patches, names, a closed recorder) before the user's
module is imported; under forkserver that module is in the preload list (and tracer is on
``PYTHONPATH``: 3.11's forkserver ignores the path it is handed).

The ``multiprocessing.synchronize`` primitives are patched in place: ``SemLock`` puts its
C lock's methods on each instance (``_make_methods``), so those are wrapped per instance;
the pickled state of a recorded object carries its :class:`Prim` (which pickles as its name),
so that a primitive keeps its name in every process. Manager proxies are recorded by
:mod:`tracer.program._patch_manager`, installed once ``multiprocessing.managers`` is imported.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tracer.program import _names, _patch, _seam
from tracer.program._seam import Actor, Prim, Recorder, plain

ENV = "TRACER_MP"  # the children's configuration: {"root", "dir", "t0"}
TICK = 0.02  # seconds between a child's publications of its state
_CFG: dict[str, Any] | None = None
_FINISH: Callable[..., None] | None = None
_SKIP = ("multiprocessing/context.py", "multiprocessing/synchronize.py")
_CARRY = "__tracer__"
_children: list[Any] = []  # the host's own traced children (Process objects)
REMOTE: dict[str, dict[str, Any]] = {}  # actor name -> its state, as the last read saw it
_remote_holders: dict[str, dict[str, int]] = {}
_remote_progress: tuple[Any, ...] = ()
_oldest_beat = float("inf")


# --- configuration -----------------------------------------------------------------------------

def configure(root: str, events: str, t0: float,
              finish: Callable[..., None] | None = None) -> None:
    """In the host: where the children write, the clock's origin (inherited by children);
    ``finish(status, detail)`` ends the run (a process started under explore or replay)."""
    global _CFG, _FINISH
    _FINISH = finish
    tracer_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _CFG = {"root": root, "dir": os.path.dirname(os.path.abspath(events)), "t0": t0}
    os.environ[ENV] = json.dumps(_CFG)
    path = os.environ.get("PYTHONPATH", "")
    if tracer_dir not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = tracer_dir + (os.pathsep + path if path else "")


def _cfg() -> dict[str, Any] | None:
    global _CFG
    if _CFG is None and os.environ.get(ENV):
        try:
            _CFG = json.loads(os.environ[ENV])
        except ValueError:
            _CFG = None
    return _CFG


def boot() -> None:
    """In a spawned child or a forkserver, before the user's module is imported."""
    cfg = _cfg()
    if cfg is None or _seam.REC is not None:
        return
    _names.set_root(cfg["root"])
    _patch.install()
    import importlib  # noqa: PLC0415
    if cfg.get("asyncio"):  # (asyncio in a child when the parent used it: it costs ~35 ms)
        try:
            importlib.import_module("tracer.program._patch_asyncio").install()
        except ImportError:  # pragma: no cover - without it
            pass
    install()
    rec = Recorder(cfg["t0"])
    rec.closed = True  # (nothing is recorded until a traced process's bootstrap)
    _seam.install(rec)
    _accesses()
    try:  # (the user's modules the child imports are rewritten as in the host)
        from pathlib import Path  # noqa: PLC0415
        importlib.import_module("tracer.program._rewrite").install(Path(cfg["root"]))
    except ImportError:  # pragma: no cover - without the rewrite
        pass


def _record_access(op: str, target: str, value: Any, site: str) -> None:
    """A shared access of the user's modules, recorded in this process (see ``_access``)."""
    rec = _seam.REC
    if rec is None or rec.closed:
        return
    a = rec.current()
    if a.quiet:
        return
    shown = getattr(rec, "shown", None)
    # (the (value,) payload of every recorded access: see _seam's design)
    rec.emit(a, op, target, None, None, site,
             (shown(a, value) if shown is not None else plain(value),))


def _accesses() -> None:
    """Shared accesses go to this process's recorder (under fork the host's were inherited)."""
    acc: Any = sys.modules.get("tracer.program._access")
    if acc is not None:
        acc.RECORD = _record_access
        acc.BEFORE_ACCESS = None


# --- primitives' names across processes -------------------------------------------------------

def _revive(name: str, ptype: str, site: str | None, options: dict[str, Any]) -> Prim:
    """The primitive ``name`` in this process (a pickled :class:`Prim`)."""
    rec = _seam.REC
    if rec is not None:
        p = rec.prims.get(name)
        if p is not None:
            return p
        return rec.register(Prim(name, ptype, site, options))
    return Prim(name, ptype, site, options)


def _reduce_prim(p: Prim) -> Any:
    return (_revive, (p.name, p.type, p.site, dict(p.options)))


def _ensure(rec: Recorder, p: Prim) -> None:
    if p.name not in rec.holders:
        rec.register(p)


def _creator(depth: int = 3) -> Any:
    """The user's frame that makes a multiprocessing object through ``multiprocessing``'s
    context and constructors (None: the standard library makes it for itself)."""
    try:
        f: Any = sys._getframe(depth)
    except ValueError:
        return None
    while f is not None:
        fn = f.f_code.co_filename.replace(os.sep, "/")
        if not fn.endswith(_SKIP):
            break
        if fn.endswith("synchronize.py") and f.f_code.co_name == "__init__" and \
                type(f.f_locals.get("self")).__name__ in ("Condition", "Event", "Barrier"):
            return None  # (the lock inside a condition or an event)
        f = f.f_back
    if f is None or _names.display(f.f_code.co_filename) is None:
        return None
    return f


# --- SemLock: Lock, RLock, Semaphore, BoundedSemaphore ------------------------------------------

def _wrap_semlock(obj: Any, p: Prim) -> None:
    """Record ``obj``'s acquire/release (instance attributes: see ``_make_methods``)."""
    sl = obj._semlock
    real_acq = sl.acquire
    real_rel = sl.release
    obj.__dict__["_tracer_p"] = p
    p.available = lambda op: not sl._is_zero()

    def acquire(block: bool = True, timeout: float | None = None) -> bool:
        rec = _seam.REC
        if rec is None or rec.closed:
            return bool(real_acq(block, timeout))
        _ensure(rec, p)
        a = rec.current()
        site = _names.user_site()
        payload: dict[str, Any] | None = None
        if not block:
            payload = {"blocking": False}
        elif timeout is not None:
            payload = {"timeout": timeout}
        rec.emit(a, "acquire", p.name, "call", None, site, payload)
        ok = rec.scheduler.try_first(a, block, timeout) and bool(real_acq(False))
        if not ok and block and timeout != 0:
            ok = rec.scheduler.block(a, p, "acquire",
                                     lambda t: bool(real_acq(True, t)), timeout)
        if ok:
            rec.hold(a, p.name)
        rec.emit(a, "acquire", p.name, "return",
                 "ok" if ok else ("fail" if not block else "timeout"), site, None)
        return ok

    def release_ok() -> None:
        rec = _seam.REC
        if rec is None or rec.closed:
            real_rel()
            return
        _ensure(rec, p)
        a = rec.current()
        seq = rec.emit(a, "release", p.name, None, None, _names.user_site(), None)
        try:
            real_rel()
        except (ValueError, AssertionError, RuntimeError) as exc:
            if seq >= 0:
                e = a.buf[-1]
                a.buf[-1] = (*e[:8], {"error": str(exc) or type(exc).__name__})
            raise
        rec.unhold(a, p.name)
    obj.acquire = acquire
    obj.release = release_ok


_SEM_TYPES = {"Lock": "lock", "RLock": "rlock", "Semaphore": "semaphore",
              "BoundedSemaphore": "bounded_semaphore"}


def _semlock_patches() -> None:
    from multiprocessing import synchronize as sy  # noqa: PLC0415
    cls: Any = sy.SemLock
    cls._tracer_p = None

    def init(original: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if _seam.REC is None or type(self).__name__ not in _SEM_TYPES:
                return
            frame = _creator(2)
            if frame is None:
                return
            ptype = _SEM_TYPES[type(self).__name__]
            opts = None
            if ptype in ("semaphore", "bounded_semaphore"):
                opts = {"value": int(self._semlock._get_value())} if sys.platform != "darwin" \
                    else None
            p = _patch._new_prim(self, ptype, frame, opts)
            _wrap_semlock(self, p)
        return __init__
    _patch._patch(cls, "__init__", init)

    def make_methods(original: Any) -> Any:
        def _make_methods(self: Any) -> None:
            original(self)
            p = self.__dict__.get("_tracer_p")
            if p is not None:
                _wrap_semlock(self, p)
        return _make_methods
    _patch._patch(cls, "_make_methods", make_methods)

    def enter(original: Any) -> Any:
        def __enter__(self: Any) -> Any:
            return self.acquire()
        return __enter__

    def exit_(original: Any) -> Any:
        def __exit__(self: Any, *args: Any) -> Any:
            return self.release()
        return __exit__
    _patch._patch(cls, "__enter__", enter)
    _patch._patch(cls, "__exit__", exit_)
    _carry_state(cls)


def _carry_state(cls: Any) -> None:
    """The pickled state of a recorded ``cls`` carries its primitive (privately)."""

    def getstate(original: Any) -> Any:
        def __getstate__(self: Any) -> Any:
            state = original(self)
            p = self.__dict__.get("_tracer_p")
            return (_CARRY, p, state) if p is not None else state
        return __getstate__

    def setstate(original: Any) -> Any:
        def __setstate__(self: Any, state: Any) -> None:
            if isinstance(state, tuple) and len(state) == 3 and state[0] == _CARRY:
                self.__dict__["_tracer_p"] = state[1]
                state = state[2]
            original(self, state)
        return __setstate__
    _patch._patch(cls, "__getstate__", getstate)
    _patch._patch(cls, "__setstate__", setstate)


# --- Condition, Event, Queue -------------------------------------------------------------------

def _constructor(cls: Any, ptype: str, options: Callable[..., dict[str, Any] | None],
                 after: Callable[[Any, Prim], None] | None = None) -> None:
    cls._tracer_p = None

    def make(init: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if "_tracer_p" in self.__dict__ or _seam.REC is None:
                init(self, *args, **kwargs)
                return
            frame = _creator(2)
            self.__dict__["_tracer_p"] = None
            init(self, *args, **kwargs)
            if frame is not None:
                p = _patch._new_prim(self, ptype, frame, options(self, *args, **kwargs))
                if after is not None:
                    after(self, p)
                self.__dict__["_tracer_p"] = p
        return __init__
    _patch._patch(cls, "__init__", make)


def _cond_options(self: Any, lock: Any = None, *args: Any, **kwargs: Any) -> dict[str, Any]:
    p = getattr(lock, "_tracer_p", None) if lock is not None else None
    return {"lock": p.name} if isinstance(p, Prim) else {}


def _cond_after(self: Any, p: Prim) -> None:
    if getattr(self._lock, "_tracer_p", None) is None:  # its own lock: the condition itself
        _wrap_semlock(self._lock, p)
        self._make_methods()
    p.available = lambda op: False


def _queue_options(self: Any, maxsize: int = 0, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"maxsize": max(0, int(maxsize))}


def _queue_after(self: Any, p: Prim) -> None:
    p.available = lambda op: (not self.empty()) if op == "get" else not self.full()


def _primitive_patches() -> None:
    from multiprocessing import queues as qu  # noqa: PLC0415
    from multiprocessing import synchronize as sy  # noqa: PLC0415
    cond: Any = sy.Condition
    _constructor(cond, "condition", _cond_options, _cond_after)
    _patch._blocking(cond, "wait", "wait", _patch._cond_wait, try_first=False)
    _patch._releasing(cond, "notify", "notify", quiet=True)
    _patch._releasing(cond, "notify_all", "notify_all", quiet=True)
    _carry_state(cond)

    ev: Any = sy.Event
    _constructor(ev, "event", lambda self, *a, **k: None,
                 lambda self, p: setattr(p, "available", lambda op: self.is_set()))
    _patch._blocking(ev, "wait", "wait", _patch._wait_flag)
    _patch._releasing(ev, "set", "set", quiet=True)
    _patch._releasing(ev, "clear", "clear", quiet=True)

    for q in (qu.Queue, qu.JoinableQueue):
        _constructor(q, "queue", _queue_options, _queue_after)
        if "put" in q.__dict__:
            _patch._blocking(q, "put", "put", _patch._queue_put)
        if "get" in q.__dict__:
            _patch._blocking(q, "get", "get", _patch._queue_get, item_out=True)
        _carry_state(q)


# --- Pipe ----------------------------------------------------------------------------------------

def _pipe_name(frame: Any) -> str:
    """``a, b = Pipe()`` -> ``a/b``; otherwise as any object is named."""
    import ast  # noqa: PLC0415
    found = _names._target_of(_names._statement(frame.f_code.co_filename, frame.f_lineno))
    if found is not None and isinstance(found[0], ast.Tuple) and \
            all(isinstance(e, ast.Name) for e in found[0].elts):
        base = "/".join(e.id for e in found[0].elts)  # type: ignore[attr-defined]
        with _names._lock:
            n = _names._taken.get(base, 0) + 1
            _names._taken[base] = n
        return base if n == 1 else f"{base}#{n}"
    return _names.name_at(frame, "pipe")


def _rebuild_conn(fn: Any, args: Any, p: Prim) -> Any:
    conn = fn(*args)
    conn._tracer_p = p
    return conn


def _pipe_patches() -> None:
    from multiprocessing import connection as co  # noqa: PLC0415
    from multiprocessing import reduction as rd  # noqa: PLC0415
    real_pipe = co.Pipe

    def Pipe(duplex: bool = True) -> Any:
        a, b = real_pipe(duplex)
        rec = _seam.REC
        frame = _creator(2) if rec is not None else None
        if frame is None or rec is None:
            return a, b
        site = f"{_names.display(frame.f_code.co_filename)}:{frame.f_lineno}"
        p = rec.register(Prim(_pipe_name(frame), "pipe", site, {"duplex": bool(duplex)}))
        for end in (a, b):
            setattr(end, "_tracer_p", p)  # noqa: B010 (a private mark)
        return a, b
    setattr(co, "Pipe", Pipe)  # noqa: B010

    base: Any = co._ConnectionBase
    base._tracer_p = None

    def send(original: Any) -> Any:
        def send(self: Any, obj: Any) -> None:
            p = self._tracer_p
            rec = _seam.REC
            if p is None or rec is None or rec.closed:
                original(self, obj)
                return
            _ensure(rec, p)
            a = rec.current()
            site = _names.user_site()
            rec.emit(a, "send", p.name, "call", None, site, {"item": plain(obj)})
            try:
                original(self, obj)
            except BaseException as exc:
                rec.emit(a, "send", p.name, "return", "error", site,
                         {"error": f"{type(exc).__name__}: {exc}"})
                raise
            rec.emit(a, "send", p.name, "return", "ok", site, None)
        return send

    def recv(original: Any) -> Any:
        def recv(self: Any) -> Any:
            p = self._tracer_p
            rec = _seam.REC
            if p is None or rec is None or rec.closed:
                return original(self)
            _ensure(rec, p)
            a = rec.current()
            site = _names.user_site()
            rec.emit(a, "recv", p.name, "call", None, site, None)
            try:
                if not self.poll(0):
                    conn = self
                    p.available = lambda op: _poll(conn)
                    rec.scheduler.block(a, p, "recv", lambda t: bool(conn.poll(t)), None)
                value = original(self)
            except BaseException as exc:
                rec.emit(a, "recv", p.name, "return", "error", site,
                         {"error": f"{type(exc).__name__}: {exc}"})
                raise
            rec.emit(a, "recv", p.name, "return", "ok", site, {"item": plain(value)})
            return value
        return recv
    _patch._patch(base, "send", send)
    _patch._patch(base, "recv", recv)

    reducers: dict[Any, Any] = getattr(rd.ForkingPickler, "_extra_reducers")  # noqa: B009
    for cls in list(reducers):
        if isinstance(cls, type) and issubclass(cls, base):
            orig = reducers[cls]

            def reduce(conn: Any, orig: Any = orig) -> Any:
                fn, args = orig(conn)
                p = conn._tracer_p
                return (fn, args) if p is None else (_rebuild_conn, (fn, args, p))
            reducers[cls] = reduce


def _poll(conn: Any) -> bool:
    try:
        return bool(conn.poll(0))
    except (OSError, EOFError, ValueError):
        return True


# --- processes -------------------------------------------------------------------------------

def _process_patches() -> None:
    from multiprocessing import process as pr  # noqa: PLC0415
    cls: Any = pr.BaseProcess
    cls._tracer_user = False
    cls._tracer_name = None

    def init(original: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if _seam.REC is None:
                return
            try:
                f: Any = sys._getframe(1)
            except ValueError:
                return
            while f is not None and f.f_code.co_name == "__init__" and \
                    f.f_locals.get("self") is self and _names.display(f.f_code.co_filename) \
                    is None:
                f = f.f_back  # (a subclass's constructor in the standard library)
            fn = f.f_code.co_filename.replace(os.sep, "/") if f is not None else ""
            if f is not None and (_names.display(f.f_code.co_filename) is not None
                                  or fn.endswith("multiprocessing/pool.py")):
                self._tracer_user = True
        return __init__
    _patch._patch(cls, "__init__", init)

    def start(original: Any) -> Any:
        def start(self: Any) -> None:
            rec = _seam.REC
            if not self._tracer_user or rec is None or rec.closed:
                original(self)
                return
            controlled = type(rec.scheduler) is not _seam.Scheduler
            if controlled and (_CFG is None or _CFG.get("child")):
                _uncontrolled(self)  # (a child's own processes: see _uncontrolled)
            name = rec.unique(self.name)
            self._tracer_name = name
            cfg = _CFG
            if cfg is not None and not cfg.get("asyncio") and "asyncio" in sys.modules:
                cfg["asyncio"] = True  # (a spawned child patches asyncio too: see boot)
                os.environ[ENV] = json.dumps(cfg)
            if threading.get_ident() in rec.by_ident or \
                    _names.created_by_user(2) is not None:
                a = rec.current()
                rec.emit(a, "spawn", name, None, None, _names.user_site(), None)
            if not controlled:
                original(self)
                _children.append(self)
                return
            # one actor at a time across processes (see _proc_control): the child's actors
            # ask this host's baton for their turns
            from tracer.program import _proc_control  # noqa: PLC0415
            assert cfg is not None
            srv = _proc_control.server(rec.scheduler, cfg["dir"])  # type: ignore[arg-type]
            if cfg.get("ctl") != srv.path:
                cfg["ctl"] = srv.path
                os.environ[ENV] = json.dumps(cfg)
            proc = self
            srv.expect(name, bool(self.daemon),
                       lambda: proc._popen is None or _alive(proc))
            try:
                original(self)
            except BaseException:
                srv.forget(name)
                raise
            _children.append(self)
        return start
    _patch._patch(cls, "start", start)

    def join(original: Any) -> Any:
        def join(self: Any, timeout: float | None = None) -> None:
            rec = _seam.REC
            name = self._tracer_name
            if name is None or rec is None or rec.closed or \
                    (threading.get_ident() not in rec.by_ident and \
                    _names.created_by_user(2) is None):
                original(self, timeout)
                return
            _patch.record_join(rec, name, lambda t: original(self, t),
                               lambda: self.exitcode is not None, timeout)
        return join
    _patch._patch(cls, "join", join)

    def bootstrap(original: Any) -> Any:
        def _bootstrap(self: Any, *args: Any, **kwargs: Any) -> Any:
            name = self.__dict__.get("_tracer_name")
            cfg = _cfg()
            old = _seam.REC
            if name is None or cfg is None or old is None:
                _seam.install(None)  # (the standard library's own process: not recorded)
                return original(self, *args, **kwargs)
            return _child(self, name, cfg, old, original, args, kwargs)
        return _bootstrap
    _patch._patch(cls, "_bootstrap", bootstrap)


def _uncontrolled(proc: Any) -> None:
    """A process started by a child process under a scheduler that runs one actor at a time
    (explore, replay): it would not be under that scheduler; the child fails, saying why."""
    where = _names.user_site()
    detail = (f"a child process of the program starts a process ({proc.name}"
              + (f", {where}" if where else "") + "): explore and replay run the "
              "processes the program's main process starts one actor at a time, not those "
              "its children start; trace it with tracer run")
    if _FINISH is not None and not (_CFG or {}).get("child"):  # (the host's own: as a
        # program the scheduler cannot control, see _control; a child's end says it)
        rec = _seam.REC
        actor = rec.current().name if rec is not None else "MainThread"
        _FINISH("timeout", detail, {"actors": [actor], "detail": detail}, "timeout")
    raise RuntimeError(f"tracer: {detail}")


def _child(proc: Any, name: str, cfg: dict[str, Any], old: Recorder, original: Any,
           args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a traced process's body in the child, recording into a fresh recorder."""
    _children.clear()
    REMOTE.clear()
    rec = Recorder(cfg["t0"])
    for p in list(old.prims.values()):
        rec.register(p)
    _seam.install(rec)
    _accesses()
    main = threading.current_thread()
    writer = _ChildWriter(rec, cfg["dir"], name)
    ctl = cfg.get("ctl")
    if ctl:  # under the host's baton (explore, replay): see _proc_control
        from tracer.program import _proc_control  # noqa: PLC0415
        cfg["child"] = True
        writer.quiet = True

        def lost() -> None:  # (the host is gone: the run is over)
            writer.write(final=True)
            os._exit(0)
        rec.scheduler = _proc_control.RemoteBaton(ctl, rec, lost)
        acc: Any = sys.modules.get("tracer.program._access")
        if acc is not None:
            acc.BEFORE_ACCESS = _before_access
        _pool_tasks(proc, rec)
    a = rec.adopt(main, name=name)
    a.kind = "process"
    a.daemon = bool(proc.daemon)
    signal.signal(signal.SIGTERM, writer.on_term)
    writer.start()
    run = proc.run

    def traced_run() -> None:
        try:
            run()
        except SystemExit as exc:
            code = exc.code
            err = None if code in (None, 0) else f"the process exited with status {code}"
            rec.end(a, err)
            raise
        except BaseException as exc:
            rec.end(a, _patch.user_traceback(exc), _patch.last_user_site(exc))
            raise
        rec.end(a)
    proc.run = traced_run
    try:
        return original(proc, *args, **kwargs)
    finally:
        writer.write(final=True)


def _pool_tasks(proc: Any, rec: Recorder) -> None:
    """A Pool's worker under a baton takes its next task when the scheduler says (a
    blocking get, recorded as no event, on the pool's task pipe), even when one is there:
    which worker runs which task is then the schedule's (a replay's: the recording's, see
    ``Baton.block``), not the OS's nor the first to come back's."""
    pool = sys.modules.get("multiprocessing.pool")
    if pool is None or getattr(proc, "_target", None) is not pool.worker or not proc._args:
        return
    inqueue = proc._args[0]
    reader = getattr(inqueue, "_reader", None)
    real_get = getattr(inqueue, "get", None)
    if reader is None or real_get is None:
        return
    tasks = Prim(f"{proc.name}.tasks", "queue", None, {"maxsize": 0, "pool": True})

    def ready(t: float | None) -> bool:
        try:
            return bool(reader.poll(t))
        except (OSError, EOFError, ValueError):
            return True

    def get() -> Any:
        if not rec.closed:  # (the host decides, even when a task is there: see Baton.block)
            rec.scheduler.block(rec.current(), tasks, "get", ready, None)
        return real_get()
    inqueue.get = get


def _before_access(op: str, target: str, site: str) -> None:
    """Under a baton, a shared access takes its turn before it is made (as in the host)."""
    rec = _seam.REC
    if rec is None or rec.closed:
        return
    a = rec.current()
    if a.quiet:
        return
    rec.access_turn(a)


class _ChildWriter:
    """A child's publisher: its state for the host's watchdog, its events at the end."""

    def __init__(self, rec: Recorder, folder: str, main: str) -> None:
        self.rec = rec
        self.main = main
        self.folder = folder
        self.pid = os.getpid()
        self.stop = os.path.join(folder, "stop")
        self.lock = threading.Lock()
        self.written = False
        self.terminated = False
        self.beat = 0.0
        self.last: Any = None
        self.quiet = False  # publishes no state (under a baton the host knows it)

    def start(self) -> None:
        t = threading.Thread(target=self.loop, name="tracer-child", daemon=True)
        t.start()

    def loop(self) -> None:
        wait = threading.Event().wait
        while not self.written:
            wait(TICK)
            if os.path.exists(self.stop):
                self.write(final=True)
                return
            if not self.quiet:
                self.publish()

    def state(self, final: bool = False) -> dict[str, Any]:
        rec = self.rec
        actors = []
        for a in list(rec.actors.values()):
            # (the process's own actor is live until the process is done: what it put into
            # a queue may still be on its way, by the queue's feeder thread)
            state = "running" if a.name == self.main and not final else a.state
            actors.append({"name": a.name, "state": state, "daemon": a.daemon,
                           "waiting": _waiting(a)})
        return {"pid": self.pid, "progress": list(rec.progress()), "actors": actors,
                "holders": {k: dict(v) for k, v in list(rec.holders.items()) if v},
                "prims": sorted(rec.prims)}

    def publish(self, state: dict[str, Any] | None = None) -> None:
        """Write the state when it changed, and at least every few ticks (its ``beat`` says
        when: the watchdog trusts a picture only once every child confirmed it)."""
        state = state or self.state()
        now = time.perf_counter()
        if state == self.last and now - self.beat < 3 * TICK:
            return
        self.last = state
        self.beat = now
        _write(os.path.join(self.folder, f"state-{self.pid}.json"), {**state, "beat": now})

    def write(self, final: bool) -> None:
        with self.lock:
            if self.written:
                return
            self.written = True
            rec = self.rec
            rec.closed = True
            st = self.state(final)
            for a in st["actors"]:
                if final:
                    a["waiting"] = None
            st["done"] = True
            doc = {"pid": self.pid,
                   "actors": [{"name": a.name, "kind": a.kind, "pid": a.pid, "tid": a.tid,
                               "daemon": a.daemon, "state": a.state, "error": a.error}
                              for a in list(rec.actors.values())],
                   "primitives": {p.name: p.spec() for p in list(rec.prims.values())},
                   "events": rec.events()}
            _write(os.path.join(self.folder, f"events-{self.pid}.json"), doc, events=True)
            if not self.quiet:
                self.publish(st)
        if self.terminated:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_term(self, signum: int, frame: Any) -> None:
        """SIGTERM (``terminate()``, a Pool's end): write the events, then die of it. When a
        write is under way (this thread, interrupted in it, or the publisher), that write
        ends the process once done: waiting for it here would never end."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # whatever holds the write back, the process dies of SIGALRM's default action in
        # 2 s: a Pool's terminate() joins its workers, and must not wait for ever (a worker
        # was seen, rarely and only under load, to outlive its SIGTERM)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(2)
        self.terminated = True
        if self.lock.acquire(False):
            self.lock.release()
            self.write(final=True)
            os.kill(os.getpid(), signal.SIGTERM)


def _waiting(a: Actor) -> list[Any] | None:
    w = a.waiting
    if w is None:
        return None
    target, op, timed = w
    last = a.buf[-1] if a.buf else None
    site = last[7] if last is not None else None
    if isinstance(target, str):
        return [target, "actor", op, timed, target, site, False]
    try:
        avail = bool(target.available(op))
    except Exception:  # (a closed queue or pipe: it moves on)
        avail = True
    return [target.name, target.type, op, timed, target.options.get("lock") or target.name,
            site, avail]


def _write(path: str, doc: Any, events: bool = False) -> None:
    """Write ``doc`` to ``path`` whole (a reader sees the old file or the new one). A small
    state goes through ``json``; the events through orjson, imported only then (it costs a
    spawned child ~12 ms to import)."""
    tmp = f"{path}.{os.getpid()}.part"
    try:
        data = _seam.dump_events(doc) if events else json.dumps(doc).encode()
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:  # (the run is over and its folder gone)
        pass


# --- the host's side ---------------------------------------------------------------------------

def read_remote() -> tuple[Any, ...]:
    """Read the children's published states (the watchdog, once a tick): their progress."""
    global _remote_progress, _oldest_beat, REMOTE, _remote_holders
    cfg = _CFG
    if cfg is None or not _children:
        return ()
    live = _live_picture()
    if live is not None:  # (under a baton: what the children's actors said, exact)
        holders, states, progress_ = live
        REMOTE = {st["name"]: st for st in states}  # (swapped whole: two threads read it)
        _remote_holders = holders
        _oldest_beat = float("inf")
        return (progress_,)
    REMOTE.clear()
    _remote_holders.clear()
    progress = []
    beats: list[float] = []
    try:
        names = os.listdir(cfg["dir"])
    except OSError:
        return ()
    for fn in sorted(names):
        if not (fn.startswith("state-") and fn.endswith(".json")):
            continue
        try:
            with open(os.path.join(cfg["dir"], fn), "rb") as f:
                st = json.loads(f.read())
        except (OSError, ValueError):
            continue
        progress.append((st["pid"], tuple(st["progress"])))
        if not st.get("done"):
            beats.append(st.get("beat", 0.0))
        for a in st["actors"]:
            REMOTE[a["name"]] = a
        for prim, h in st["holders"].items():
            mine = _remote_holders.setdefault(prim, {})
            for k, v in h.items():
                mine[k] = mine.get(k, 0) + v
    published = {pid for pid, _ in progress}
    for p in list(_children):  # (started, not yet published: a spawned child boots slowly)
        pid = p.pid
        name = p._tracer_name
        if pid is None or pid in published or name is None or name in REMOTE or \
                f"events-{pid}.json" in names or not _alive(p):
            continue
        REMOTE[name] = {"name": name, "state": "running", "daemon": bool(p.daemon),
                        "waiting": None}
        beats.append(0.0)  # (no picture is confirmed until it publishes one)
    _remote_progress = tuple(progress)
    _oldest_beat = min(beats) if beats else float("inf")
    return _remote_progress


def _live_picture() -> Any:
    pc = sys.modules.get("tracer.program._proc_control")
    return None if pc is None else pc.live_picture()


def _alive(proc: Any) -> bool:
    """Whether the child ``proc`` runs (not reaped, not a zombie), without reaping it."""
    popen = getattr(proc, "_popen", None)
    if popen is None or getattr(popen, "returncode", None) is not None:
        return False
    try:
        with open(f"/proc/{proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(proc.pid, 0)
        except OSError:
            return False
        return True


def confirmed_since(t: float) -> bool:
    """Whether every live child published its state after ``t`` (a ``perf_counter``)."""
    return _oldest_beat > t


def remote_picture() -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """(holders, live actors' states) of the children, as :func:`read_remote` last read
    (under a baton: as they are now)."""
    if _live_picture() is not None:
        read_remote()
    return _remote_holders, [a for a in REMOTE.values() if a["state"] != "done"]


def _unlink_semaphores() -> None:
    """The named semaphores of the program's multiprocessing locks, unlinked as the
    interpreter would at exit (the host leaves with ``os._exit``; else the resource tracker
    warns of leaked semaphores)."""
    util = sys.modules.get("multiprocessing.util")
    sy = sys.modules.get("multiprocessing.synchronize")
    if util is None or sy is None:
        return
    for key, fin in list(getattr(util, "_finalizer_registry", {}).items()):
        if getattr(fin, "_callback", None) is sy.SemLock._cleanup:
            try:
                fin()
            except Exception:  # (already gone)
                pass
            util._finalizer_registry.pop(key, None)


def stop_children(wait: float = 1.5) -> None:
    """At the run's end, in the host: ask every traced child to write its events now, and
    wait (a little) until those alive did."""
    _unlink_semaphores()
    cfg = _CFG
    if cfg is None or not _children:
        return
    folder = cfg["dir"]
    _write(os.path.join(folder, "stop"), {})
    clock = time.perf_counter
    deadline = clock() + wait
    while clock() < deadline:
        pending = False
        for p in list(_children):
            pid = p.pid
            if pid is None or os.path.exists(os.path.join(folder, f"events-{pid}.json")):
                continue
            try:
                if p._popen is not None and p._popen.poll() is None:
                    pending = True
            except (OSError, ValueError):
                pass
        if not pending:
            break
        _patch._real_sleep(TICK)
    if _live_picture() is not None:  # (under a baton: no process outlives the schedule)
        _kill_children()


def _kill_children() -> None:
    """Kill every process this host started (the program's, and multiprocessing's own: a
    Manager's server, a Pool's workers) and reap them."""
    procs = list(_children)
    mpp = sys.modules.get("multiprocessing.process")
    if mpp is not None:
        procs += [p for p in list(getattr(mpp, "_children", ())) if p not in procs]
    for p in procs:
        popen = getattr(p, "_popen", None)
        if popen is None or getattr(popen, "returncode", None) is not None:
            continue
        try:
            os.kill(p.pid, signal.SIGKILL)
        except (OSError, TypeError):
            continue
    for p in procs:
        popen = getattr(p, "_popen", None)
        if popen is None:
            continue
        try:
            popen.wait(2.0)
        except (OSError, ValueError, AttributeError):
            pass


def wait_children() -> None:
    """In the host, once the program's main thread ended: wait for its non-daemon processes
    (as the interpreter would, at exit)."""
    for p in list(_children):
        try:
            if not p.daemon and p._popen is not None:
                p._popen.wait(None)
        except (OSError, ValueError, AttributeError):
            pass


def _forkserver_patches() -> None:
    from multiprocessing import forkserver as fs  # noqa: PLC0415
    from multiprocessing import spawn as sp  # noqa: PLC0415
    real_cmd = sp.get_command_line

    def get_command_line(**kwds: Any) -> list[str]:
        args: list[str] = real_cmd(**kwds)
        if _cfg() is not None and "-c" in args:
            i = args.index("-c") + 1
            args[i] = "import tracer.program._mp_boot; " + args[i]
        return args
    sp.get_command_line = get_command_line

    def ensure(original: Any) -> Any:
        def ensure_running(self: Any) -> None:
            mods = list(self._preload_modules or ())
            if _cfg() is not None and "tracer.program._mp_boot" not in mods:
                self._preload_modules = ["tracer.program._mp_boot", *mods]
            original(self)
        return ensure_running
    _patch._patch(fs.ForkServer, "ensure_running", ensure)


_installed = False


def install() -> None:
    """Patch multiprocessing (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    setattr(Prim, "__reduce__", _reduce_prim)  # noqa: B010 (a Prim pickles as its name)
    _semlock_patches()
    _primitive_patches()
    _pipe_patches()
    _process_patches()
    _forkserver_patches()
    # Manager() proxies (see _patch_manager) once multiprocessing.managers is imported
    if "multiprocessing.managers" in sys.modules:
        _install_manager()
    else:
        sys.meta_path.insert(0, _patch._OnImport("multiprocessing.managers", _install_manager))


def _install_manager() -> None:
    from tracer.program import _patch_manager  # noqa: PLC0415 (only when it is needed)
    _patch_manager.install()
