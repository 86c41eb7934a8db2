"""The host process of a traced program: ``python -m tracer.program._host CONFIG``.

It installs the patches and the import rewrite, makes the main thread an actor, runs the
program as ``__main__`` (its arguments in ``sys.argv``), and watches it from a thread of its
own (``_watch``). However the program ends -- it returns, raises, calls ``sys.exit``, deadlocks,
stalls, runs past its timeout, or the command asks it to stop (a byte on the control pipe: the
user pressed Ctrl-C or sent SIGTERM) -- the host writes its events to the file the command
named and leaves with ``os._exit``: no thread of the program outlives it, and no handler of
the program can keep it alive. The command (``_launch``) then kills what is left of the
program's process group (its child processes).
"""

from __future__ import annotations

import importlib
import os
import runpy
import signal
import sys
import threading
import time
import types
from math import isnan
from pathlib import Path
from typing import Any, NoReturn

import orjson

from tracer.program import _names, _patch, _patch_asyncio, _patch_mp, _seam
from tracer.program._seam import Actor, Prim, Recorder, Scheduler
from tracer.program._watch import Watchdog

_real_exit = os._exit  # (os._exit becomes Host.user_exit while a program runs)

EXIT_WRITE_FAILED = 3  # the host could not write its events (the command says so)


# (path, source) -> the program's code, compiled (and rewritten) once for every schedule
CODE: dict[tuple[str, bytes], Any] = {}


def compile_program(path: str, source: bytes, shown: str, rewrite: Any) -> Any:
    """The code of the program's file (rewritten, when the rewrite is there)."""
    if rewrite is not None:
        return rewrite.rewrite_source(source.decode("utf-8"), os.path.abspath(path), shown)
    return compile(source, os.path.abspath(path), "exec")


class Host:
    """One run of the program in this process."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.out = config["events"]
        self.done = threading.Lock()  # (a real lock: made before the patches) who writes
        self.finished = False
        self.exit_status: int | None = None
        self.status = "ok"
        self.detail = ""
        self.rec = Recorder(time.perf_counter())  # (ts: seconds since the program began)
        # a user module imported (its body has run) -> its event `import NAME`; the actors
        # that have waited on it (see record_access)
        self.imports: dict[str, str] = {}
        self.pid = os.getpid()
        self.import_seen: set[tuple[str, str]] = set()
        if config.get("control") is not None:  # one actor at a time (explore, replay)
            from tracer.program._control import make_scheduler  # noqa: PLC0415

            self.rec.scheduler = make_scheduler(config["control"], self)

    # --- the program
    def main(self) -> None:
        cfg = self.config
        if os.path.realpath(cfg["root"]) != _names.ROOT:  # (an exploration's host set it)
            _names.set_root(cfg["root"])
        _patch.install()
        _patch_asyncio.install()  # (it builds on _patch's helpers: installed after it)
        _patch_mp.install()
        _patch_mp.configure(cfg["root"], self.out, self.rec.t0, self.finish)
        _access: Any = None
        _rewrite: Any = None
        try:  # (part 3: the shared accesses of the user's modules)
            _access = importlib.import_module("tracer.program._access")
            _rewrite = importlib.import_module("tracer.program._rewrite")
        except ImportError:  # pragma: no cover - while part 3 is not there
            pass
        rec = self.rec
        _seam.install(rec)
        if _access is not None:
            if _rewrite is not None:
                _rewrite.ON_IMPORTED = self.imported
            if type(rec.scheduler) is not Scheduler:
                _access.RECORD = self.record_access
                # one actor at a time: an access takes its turn before it is made, so that
                # what it reads is what the recorded order says
                _access.BEFORE_ACCESS = self.before_access
            else:
                _access.RECORD = free_recording(self)
        os._exit = self.user_exit
        main_actor = rec.adopt(threading.main_thread(), name="MainThread")
        watchdog = Watchdog(self, cfg["timeout"], cfg.get("ctrl"))
        if cfg.get("signalled"):  # a schedule of an exploration: its host signals the end
            signal.signal(signal.SIGUSR1, lambda *_: self.finish(
                "timeout", watchdog.timeout_detail(), watchdog.timeout_payload(), "timeout"))
            signal.signal(signal.SIGUSR2, lambda *_: self.finish(
                "interrupted", "interrupted by the exploration's stop"))
            # the baton judges its threads; an event loop's tasks wait where it cannot see
            # (an await suspends a task, not its thread): the watchdog judges those
            watchdog.timeout = float("inf")
        watchdog.start()
        sys.argv = [cfg["path"] or cfg["module"], *cfg["argv"]]
        error: str | None = None
        site: str | None = None
        try:
            if _rewrite is not None:
                _rewrite.install(Path(cfg["root"]))
            if cfg["module"]:
                sys.path.insert(0, cfg["root"])
                runpy.run_module(cfg["module"], run_name="__main__", alter_sys=True)
            else:
                self.run_path(cfg["path"], _rewrite)
        except SystemExit as exc:
            code = exc.code
            if code is None or code == 0:
                self.exit_status = 0
            elif isinstance(code, int):
                self.exit_status = code
                error = f"the program exited with status {code} (sys.exit({code}))"
                site = _patch.last_user_site(exc)
            else:
                self.exit_status = 1
                error = f"the program exited with status 1: sys.exit({code!r})"
                sys.stderr.write(f"{code}\n")  # (as the interpreter prints it)
                site = _patch.last_user_site(exc)
        except BaseException as exc:  # the program's own exception: its error, not ours
            self.exit_status = 1
            error = _patch.user_traceback(exc)
            site = _patch.last_user_site(exc)
            sys.stderr.write(error + "\n")
        else:
            self.exit_status = 0
        # as the interpreter would: the thread exit hooks (pools nobody shut down), then wait
        _patch.at_exit()
        rec.end(main_actor, error, site)
        # as the interpreter would: wait for the program's other non-daemon threads
        for a in list(rec.actors.values()):
            if a is main_actor or a.daemon:
                continue
            while not a.ended.wait(0.01):
                if a.thread is not None and not a.thread.is_alive():
                    # (a thread adopted at its first event, such as a pool's worker, leaves
                    # without passing through a traced run: its end is recorded here)
                    rec.end(a)
        _patch_mp.wait_children()
        # (the end's `line` is the site: the analysis quotes it, so the error does not)
        self.finish("ok" if error is None else "error", "" if error is None else
                    f"MainThread failed: {error.splitlines()[-1]}"
                    + (f" ({site})" if site is not None else ""))

    def run_path(self, path: str, rewrite: Any) -> None:
        """Run the file ``path`` as ``__main__`` (rewritten, when the rewrite is there)."""
        with open(path, "rb") as f:
            source = f.read()
        module = types.ModuleType("__main__")
        module.__file__ = path
        module.__builtins__ = __builtins__  # type: ignore[attr-defined]
        module.__dict__["__spec__"] = None
        sys.modules["__main__"] = module
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        shown = _names.display(os.path.abspath(path)) or os.path.basename(path)
        code = CODE.get((path, source))  # (an exploration's host compiled it once)
        if code is None:
            code = compile_program(path, source, shown, rewrite)
        exec(code, module.__dict__)

    def user_exit(self, status: int) -> NoReturn:
        """``os._exit(n)`` called by the program: it leaves at once, as it asks, but with its
        events written (its caller's end says so)."""
        site = _names.user_site()
        if self.rec.closed or site is None or os.getpid() != self.pid:  # (a forked child)
            _real_exit(status)
        self.exit_status = status
        a = self.rec.current()
        error = None if status == 0 else \
            f"the program exited with status {status} (os._exit({status}))"
        self.rec.end(a, error, site)
        self.finish("ok" if error is None else "error",
                    "" if error is None else f"{a.name} failed: {error} ({site})")
        _real_exit(status)  # (another thread was finishing already)

    def before_access(self, op: str, target: str, site: str) -> None:
        rec = self.rec
        if rec.closed:
            return
        a = rec.current()
        if a.quiet:
            return
        if self.imports:  # (before the access's turn: they are recorded before it is made)
            self._import_waits(a, target, site)
        rec.access_turn(a)

    def imported(self, module: str) -> None:
        """A user module's body has run: the importer ``set``s the event ``import MODULE``.
        The import system hands a module to other threads only once its body has run (its
        module lock), so another actor's first access to the module's globals ``wait``s on
        that event (see record_access): the body's writes come before, not a race."""
        rec = self.rec
        if rec.closed:
            return
        a = rec.current()
        if a.quiet:
            return
        name = f"import {module}"
        rec.register(Prim(name, "event", _names.user_site()))
        self.imports[module] = a.name
        rec.emit(a, "set", name, None, None, _names.user_site(), None)

    def _import_waits(self, a: Actor, target: str, site: str) -> None:
        parts = target.split(".")
        for i in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:i])
            importer = self.imports.get(module)
            if importer is None:
                continue
            if importer != a.name and (a.name, module) not in self.import_seen:
                self.import_seen.add((a.name, module))
                for phase, result in (("call", None), ("return", "ok")):
                    self.rec.emit(a, "wait", f"import {module}", phase, result, site, None)
            return

    def record_access(self, op: str, target: str, value: Any, site: str) -> None:
        rec = self.rec
        if rec.closed:
            return
        a = rec.current()
        if a.quiet:
            return
        if self.imports:
            self._import_waits(a, target, site)
        rec.emit(a, op, target, None, None, site, (rec.shown(a, value),))

    # --- the end
    def finish(self, status: str, detail: str = "", engine: dict[str, Any] | None = None,
               op: str | None = None) -> None:
        """Write the events and leave (only the first caller does)."""
        with self.done:
            if self.finished:
                if threading.current_thread() is threading.main_thread():
                    # (the first caller, the watchdog, is writing and will leave: returning
                    # would end the interpreter under it, its events unwritten)
                    while True:
                        time.sleep(60)
                return
            self.finished = True
        rec = self.rec
        rec.closed = True  # (what the program does from now on is not recorded)
        _patch_mp.stop_children()
        if op is not None:
            rec.engine_event(op, engine or {})
        for a in list(rec.actors.values()):
            if a.state != "done" and a.daemon and status == "ok":
                rec.engine.append((next(rec.seq), rec.clock() - rec.t0, a.name, "end", None,
                                   None, "abandoned", None, None))
        doc = {
            "pid": os.getpid(),
            "status": status,
            "detail": detail,
            "exit_status": self.exit_status,
            "duration": round(rec.clock() - rec.t0, 6),
            "actors": [{"name": a.name, "kind": a.kind, "pid": a.pid, "tid": a.tid,
                        "daemon": a.daemon, "state": a.state, "error": a.error,
                        "result": a.result}
                       for a in list(rec.actors.values())],
            "primitives": {p.name: p.spec() for p in list(rec.prims.values())},
            "events": rec.events(),
        }
        code = 0
        try:
            data = _seam.dump_events(doc)
            tmp = self.out + ".part"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.out)
        except Exception as exc:  # pragma: no cover - a full disk
            sys.stderr.write(f"tracer: cannot write the program's events: {exc}\n")
            code = EXIT_WRITE_FAILED
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # (the program may have closed them)
                pass
        _real_exit(code)


_SCALAR = frozenset((int, float, str, bool, type(None)))


def free_recording(host: Host) -> Any:
    """The recording of a shared access when every actor runs freely: what
    :meth:`Host.record_access` does (and ``Recorder.emit``), with everything it looks up
    bound once -- every attribute access of the user's objects comes through here."""
    rec = host.rec
    imports = host.imports
    import_waits = host._import_waits
    by_ident = rec.by_ident
    get_ident = threading.get_ident
    next_seq = rec.seq.__next__
    clock = rec.clock
    t0 = rec.t0
    scalar = _SCALAR
    current = rec.current
    prim_of = _seam.PRIM_OF
    bare = _seam.BARE_PAYLOAD
    none = (None,)

    def record(op: str, target: str, value: Any, site: str) -> None:
        if rec.closed:
            return
        a = None if rec.tasks else by_ident.get(get_ident())
        if a is None:
            a = current()
        if a.quiet:
            return
        if imports:
            import_waits(a, target, site)
        if value.__class__ not in scalar or (value.__class__ is float and isnan(value)):
            # (Recorder.shown, a recorded primitive's part inline: a global lock is read at
            # every `with lock:`)
            of = prim_of.get(value.__class__)
            p = of(value) if of is not None else None
            value = p.shown if p.__class__ is Prim else rec.shown(a, value)
            payload: Any = (value,) if value.__class__ not in bare else value
        else:  # (a bare int, float, str or bool is its own payload: see _seam's design)
            payload = value if value is not None else none
        a.buf.append((next_seq(), clock() - t0, a.name, op, target, None, None, site, payload))
    return record


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        config = orjson.loads(f.read())
    Host(config).main()


if __name__ == "__main__":
    # (keep tracer's own frames out of the program's view: it runs as __main__)
    del sys.argv[0]
    sys.argv.insert(0, "tracer-host")
    time.perf_counter()
    main()
