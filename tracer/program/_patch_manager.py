"""Record ``multiprocessing.Manager()`` proxies in a traced program, in the process that uses them.

Design. A manager's objects live in its server process (not an actor, nothing recorded
there); what the user's code holds is a proxy whose every operation goes through
``BaseProxy._callmethod``. So three patches, in place, once ``multiprocessing.managers`` is
imported (a program without a manager never imports it, and pays nothing):

- ``SyncManager.Lock``, ``.dict``... (the methods ``register`` made): a proxy the user's code
  makes (``_names.created_by_user``) is marked with its name, the variable it goes in: a
  :class:`Prim` of the scenario type for a synchronisation object (``_tracer_p``), a
  ``(kind, name)`` for shared data (``_tracer_d``);
- ``BaseProxy._callmethod``: a marked proxy's operation is recorded as the threading one is
  (a blocking call's ``call``, the wait through the run's scheduler's ``block`` so that the
  watchdog sees who waits and who holds, its ``return``), or as a ``read``/``write`` of shared
  data named as the rewrite names items (``shared['total']``, ``ns.x``, ``box.value``;
  ``l.append(...)`` is a write of the whole list ``l[:]``, ``len(l)`` a read of it);
- ``BaseProxy.__reduce__``: the pickled proxy carries its mark (privately, around the standard
  ``RebuildProxy``), so that it keeps its name in every process it is sent to (under fork a
  child inherits the marked object itself).
"""

from __future__ import annotations

import queue
from typing import Any

from tracer.program import _names, _patch, _seam
from tracer.program._seam import Prim, payload_fields

_SYNC = {"Lock": "lock", "RLock": "rlock", "Semaphore": "semaphore",
         "BoundedSemaphore": "bounded_semaphore", "Event": "event", "Condition": "condition",
         "Barrier": "barrier", "Queue": "queue", "JoinableQueue": "queue"}
_DATA = {"dict": "dict", "list": "list", "Namespace": "namespace", "Value": "value"}

# dict/list operations: reads and writes of the whole container (item ones are apart)
_WHOLE_READS = frozenset(("__len__", "__contains__", "keys", "items", "values", "copy",
                          "#GETVALUE", "__repr__", "__str__", "index", "count", "__iter__",
                          "__reversed__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__",
                          "__ge__", "__add__", "__mul__", "__rmul__"))
_WHOLE_WRITES = frozenset(("append", "extend", "insert", "pop", "remove", "sort", "reverse",
                           "clear", "popitem", "__iadd__", "__imul__", "__delitem__",
                           "update", "setdefault"))


def _options(ptype: str, args: tuple[Any, ...], kwds: dict[str, Any]) -> dict[str, Any] | None:
    if ptype in ("semaphore", "bounded_semaphore"):
        return {"value": int(args[0] if args else kwds.get("value", 1))}
    if ptype == "barrier":
        return {"parties": int(args[0] if args else kwds.get("parties", 0))}
    if ptype == "queue":
        return {"maxsize": max(0, int(args[0] if args else kwds.get("maxsize", 0)))}
    if ptype == "condition":
        lock = args[0] if args else kwds.get("lock")
        p = getattr(lock, "__dict__", {}).get("_tracer_p") if lock is not None else None
        return {"lock": p.name} if isinstance(p, Prim) else None
    return None


def _maker(typeid: str) -> Any:
    """Wrap ``SyncManager.<typeid>``: mark the proxies the user's code makes."""

    def make(original: Any) -> Any:
        def create(self: Any, *args: Any, **kwds: Any) -> Any:
            frame = _names.created_by_user(2) if _seam.REC is not None else None
            proxy = original(self, *args, **kwds)
            rec = _seam.REC
            if frame is None or rec is None:
                return proxy
            if typeid in _SYNC:
                ptype = _SYNC[typeid]
                p = _patch._new_prim(None, ptype, frame, _options(ptype, args, kwds))
                object.__setattr__(proxy, "_tracer_p", p)
            else:
                kind = _DATA[typeid]
                object.__setattr__(proxy, "_tracer_d", (kind, _names.name_at(frame, kind)))
            return proxy
        return create
    return make


def _rebuild(fn: Any, args: Any, p: Prim | None, d: tuple[str, str] | None) -> Any:
    """Unpickle a marked proxy (``RebuildProxy``), mark kept."""
    obj = fn(*args)
    try:
        if p is not None:
            object.__setattr__(obj, "_tracer_p", p)
        if d is not None:
            object.__setattr__(obj, "_tracer_d", tuple(d))
    except (AttributeError, TypeError):  # (the server's own referent, not a proxy)
        pass
    return obj


def _reducer(original: Any) -> Any:
    def __reduce__(self: Any) -> Any:
        fn, args = original(self)
        p = self.__dict__.get("_tracer_p")
        d = self.__dict__.get("_tracer_d")
        if p is None and d is None:
            return fn, args
        return _rebuild, (fn, args, p, d)
    return __reduce__


# --- the operations ------------------------------------------------------------------------------

def _callmethod_patch(original: Any) -> Any:
    def _callmethod(self: Any, methodname: str, args: tuple[Any, ...] = (),
                    kwds: dict[str, Any] | None = None) -> Any:
        kw = kwds or {}
        rec = _seam.REC
        if rec is None or rec.closed:
            return original(self, methodname, args, kw)
        mine = self.__dict__
        p = mine.get("_tracer_p")
        if p is not None:
            return _sync(rec, original, self, p, methodname, args, kw)
        d = mine.get("_tracer_d")
        if d is not None:
            return _data(rec, original, self, d, methodname, args, kw)
        return original(self, methodname, args, kw)
    return _callmethod


def _sync(rec: _seam.Recorder, original: Any, proxy: Any, p: Prim, method: str,
          args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    """A synchronisation proxy's operation, recorded as its threading twin's."""
    def call(m: str, a: tuple[Any, ...]) -> Any:
        return original(proxy, m, a, {})

    t = p.type
    if p.name not in rec.holders:
        rec.register(p)
    if t in ("lock", "rlock", "semaphore", "bounded_semaphore", "condition"):
        target = rec.prims.get(p.options.get("lock", ""), p)
        if method == "acquire":
            blocking = bool(args[0]) if args else bool(kw.get("blocking", True))
            timeout = args[1] if len(args) > 1 else kw.get("timeout")
            if timeout is not None and timeout < 0:
                timeout = None

            def attempt(tt: float | None) -> tuple[bool, Any]:
                if tt == 0:
                    ok = bool(call("acquire", (False,)))
                else:
                    ok = bool(call("acquire", (True,) if tt is None else (True, tt)))
                return ok, ok
            return _blocking(rec, target, "acquire", attempt, blocking, timeout, True,
                             hold=True)
        if method == "release":
            return _releasing(rec, target, "release", lambda: call("release", ()), unhold=True)
        if t == "condition" and method == "wait":
            timeout = args[0] if args else kw.get("timeout")

            def cwait(tt: float | None) -> tuple[bool, Any]:
                ok = bool(call("wait", (tt,)))
                return ok, ok
            return _blocking(rec, p, "wait", cwait, True, timeout, False)
        if t == "condition" and method in ("notify", "notify_all"):
            return _releasing(rec, p, method, lambda: call(method, args))
    elif t == "event":
        if method == "wait":
            timeout = args[0] if args else kw.get("timeout")
            p.available = _asker(lambda op: bool(call("is_set", ())))

            def ewait(tt: float | None) -> tuple[bool, Any]:
                ok = bool(call("wait", (tt,)))
                return ok, ok
            return _blocking(rec, p, "wait", ewait, True, timeout, True)
        if method in ("set", "clear"):
            return _releasing(rec, p, method, lambda: call(method, ()))
    elif t == "barrier" and method == "wait":
        timeout = args[0] if args else kw.get("timeout")

        def bwait(tt: float | None) -> tuple[bool, Any]:
            return True, call("wait", (tt,))
        return _blocking(rec, p, "wait", bwait, True, timeout, False)
    elif t == "queue" and method in ("put", "get", "put_nowait", "get_nowait"):
        op = method[:3]
        if method.endswith("_nowait"):
            rest: tuple[Any, ...] = (args[0] if args else kw.get("item"),) if op == "put" else ()
            cargs, blocking, timeout = rest, False, None
        else:
            cargs, blocking, timeout = _patch._call_args(op, args, kw)

        def qop(tt: float | None) -> tuple[bool, Any]:
            real = (*cargs, False) if tt == 0 else (*cargs, True, tt)
            try:
                return True, call(op, real)
            except (queue.Full, queue.Empty):
                return False, None
        item = cargs[0] if op == "put" else None
        size = int(p.options.get("maxsize", 0))
        p.available = _asker(lambda o: int(call("qsize", ())) > 0 if o == "get"
                             else not size or int(call("qsize", ())) < size)
        return _blocking(rec, p, op, qop, blocking, timeout, True, item=(op == "put", item))
    return original(proxy, method, args, kw)


def _asker(ask: Any) -> Any:
    """``Prim.available`` for the watchdog (a question to the manager, on the asking thread's
    own connection, not recorded): a manager that cannot answer (it is gone) lets go."""
    def available(op: str) -> bool:
        try:
            return bool(ask(op))
        except Exception:  # (the manager shut down, its connection broken)
            return True
    return available


def _blocking(rec: _seam.Recorder, p: Prim, op: str, wait: Any, blocking: bool,
              timeout: float | None, try_first: bool, hold: bool = False,
              item: tuple[bool, Any] = (False, None)) -> Any:
    """:func:`_patch.record_blocking` for a proxy's call (``hold``: a success takes a
    hold)."""
    return _patch.record_blocking(
        rec, p, op, wait, blocking, timeout, try_first, item, op == "get",
        (lambda a: rec.hold(a, p.name)) if hold else None)


def _releasing(rec: _seam.Recorder, p: Prim, op: str, real: Any, unhold: bool = False) -> Any:
    a = rec.current()
    seq = rec.emit(a, op, p.name, None, None, _names.user_site(), None)
    a.quiet += 1
    try:
        value = real()
    except Exception as exc:
        if seq >= 0 and a.buf:
            e = a.buf[-1]
            a.buf[-1] = (*e[:8], {**payload_fields(e[8]),
                                    "error": str(exc) or type(exc).__name__})
        raise
    finally:
        a.quiet -= 1
    if unhold:
        rec.unhold(a, p.name)
    return value


def _data(rec: _seam.Recorder, original: Any, proxy: Any, d: tuple[str, str], method: str,
          args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    """A shared-data proxy's operation: a ``read`` (after it, with the value read) or a
    ``write`` (before it) of the item, attribute or container it touches."""
    kind, name = d
    a = rec.current()
    if a.quiet:
        return original(proxy, method, args, kw)
    target: str | None = None
    write = False
    value: Any = None
    if kind == "value":
        if method == "get":
            target = f"{name}.value"
        elif method == "set":
            target, write, value = f"{name}.value", True, args[0] if args else None
    elif kind == "namespace":
        if method == "__getattribute__" and args:
            target = f"{name}.{args[0]}"
        elif method in ("__setattr__", "__delattr__") and args:
            target, write = f"{name}.{args[0]}", True
            value = args[1] if method == "__setattr__" and len(args) > 1 else None
    elif method in ("__getitem__", "get") and args and not isinstance(args[0], slice):
        target = f"{name}[{args[0]!r}]"
    elif method == "__setitem__" and len(args) > 1 and not isinstance(args[0], slice):
        target, write, value = f"{name}[{args[0]!r}]", True, args[1]
    elif kind == "dict" and method in ("__delitem__", "pop", "setdefault") and args:
        target, write = f"{name}[{args[0]!r}]", True
        value = args[1] if method == "setdefault" and len(args) > 1 else None
    elif kind == "dict" and method == "update" and not kw and len(args) == 1 and \
            isinstance(args[0], dict):
        site = _names.user_site()
        for k, v in args[0].items():
            rec.emit(a, "write", f"{name}[{k!r}]", None, None, site,
                     {"value": rec.shown(a, v)})
        return original(proxy, method, args, kw)
    elif method in _WHOLE_WRITES:  # (``name[:]``: not the variable ``name`` holding the proxy)
        target, write, value = f"{name}[:]", True, args[0] if args else None
    elif method in _WHOLE_READS:
        target = f"{name}[:]"
    if target is None:
        return original(proxy, method, args, kw)
    site = _names.user_site()
    if write:
        rec.emit(a, "write", target, None, None, site, {"value": rec.shown(a, value)})
        return original(proxy, method, args, kw)
    out = original(proxy, method, args, kw)
    shown = None if method in ("__iter__", "__reversed__") else rec.shown(a, out)
    rec.emit(a, "read", target, None, None, site, {"value": shown})
    return out


_installed = False


def install() -> None:
    """Patch ``multiprocessing.managers`` (once per process; when it is imported)."""
    global _installed
    if _installed:
        return
    _installed = True
    from multiprocessing import managers as mg  # noqa: PLC0415
    base: Any = mg.BaseProxy
    _patch._patch(base, "_callmethod", _callmethod_patch)
    _patch._patch(base, "__reduce__", _reducer)
    sm: Any = mg.SyncManager
    for typeid in (*_SYNC, *_DATA):
        if typeid in sm.__dict__:
            _patch._patch(sm, typeid, _maker(typeid))
