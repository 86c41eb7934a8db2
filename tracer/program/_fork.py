"""The host of an exploration: ``python -m tracer.program._fork CONFIG``.

It installs the patches and compiles the program once, then forks a child per schedule (a
fork costs a few milliseconds where starting a host costs 0.1-0.3 s): the child is a host
(``_host.Host``) whose scheduler is a :class:`_control.Baton` with the schedule's seed; it
writes its events to ``s<n>/events.json`` (its child processes theirs beside) and leaves
with ``os._exit``. This process starts no thread before forking. A child past its timeout is
told to end (SIGUSR1: it writes its events, status timeout), a stop the command asks for is
passed on (SIGUSR2), and a child that does not end after that is killed.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import sys
import time
from typing import Any

import orjson

from tracer.program import _host

_clock = time.monotonic


def explore_host(config: dict[str, Any]) -> None:
    """Run schedules ``control.start`` .. ``control.stop - 1``: the patches are installed
    here, once; each schedule is a forked child that runs the program under a :class:`Baton`
    and writes ``<events>.<n>``; a child past its timeout is killed. Leaves with
    ``os._exit``."""
    import importlib  # noqa: PLC0415

    from tracer.engine.schedule.explore.scheduler import schedule_seed  # noqa: PLC0415
    from tracer.program import _control as _c  # noqa: F401, PLC0415 (imported once, here)
    from tracer.program import _names, _patch  # noqa: PLC0415
    from tracer.program import _watch as _  # noqa: F401, PLC0415 (imported once, here)
    from tracer.trace import waits as _w  # noqa: F401, PLC0415

    _patch.install()
    _names.set_root(config["root"])
    rewrite: Any = None
    try:
        importlib.import_module("tracer.program._access")
        rewrite = importlib.import_module("tracer.program._rewrite")
    except ImportError:  # pragma: no cover - while the rewrite is not there
        pass
    path = config.get("path")
    if path:  # compiled (and rewritten) once, for every schedule
        try:
            with open(path, "rb") as f:
                source = f.read()
            shown = _names.display(os.path.abspath(path)) or os.path.basename(path)
            _host.CODE[(path, source)] = _host.compile_program(path, source, shown, rewrite)
        except Exception:  # (each schedule then says what is wrong, as a run would)
            pass
    ctl = config["control"]
    ctrl = config.get("ctrl")
    timeout = float(config["timeout"])
    null = os.open(os.devnull, os.O_WRONLY)
    gc.collect()
    gc.freeze()  # (the children's collections do not touch, hence copy, the host's objects)
    for n in range(int(ctl["start"]), int(ctl["stop"])):
        if ctrl is not None and select.select([ctrl], [], [], 0)[0]:
            break
        # (a folder per schedule: its child processes' files, their control socket)
        folder = os.path.join(os.path.dirname(config["events"]), f"s{n}")
        os.makedirs(folder, exist_ok=True)
        cfg = {**config, "events": os.path.join(folder, "events.json"), "signalled": True,
               "control": {**ctl, "seed": schedule_seed(int(ctl["seed"]), n), "run": n}}
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the schedule
            try:
                os.dup2(null, 1)
                os.dup2(null, 2)
                _host.Host(cfg).main()
            finally:
                os._exit(3)
        stop = _wait_child(pid, timeout, ctrl)
        if stop:
            break
    os._exit(0)


def _wait_child(pid: int, timeout: float, ctrl: int | None) -> bool:
    """Wait for child ``pid``: past ``timeout`` it is told to end (SIGUSR1: it writes its
    events, status timeout), a stop asked on ``ctrl`` is passed on (SIGUSR2), and a child
    that does not end 2 s after is killed. True when the exploration is to stop."""
    fds = [] if ctrl is None else [ctrl]
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # pragma: no cover - not Linux >= 5.3
        fd = None
    stopped = False
    told = False
    end = _clock() + timeout
    while True:
        if fd is not None:
            ready, _, _ = select.select([fd, *fds], [], [], max(0.0, end - _clock()))
        else:  # pragma: no cover
            ready, _, _ = select.select(fds, [], [], 0.001)
            if os.waitpid(pid, os.WNOHANG)[0]:
                return stopped
        if fd is not None and fd in ready:
            os.close(fd)
            os.waitpid(pid, 0)
            return stopped
        if ctrl is not None and ctrl in ready and not stopped:
            stopped = True
            fds = []
            _signal(pid, signal.SIGUSR2)
            end = _clock() + 2.0
            continue
        if _clock() >= end:
            if told or stopped:
                _signal(pid, signal.SIGKILL)
                end = _clock() + 60.0
                continue
            told = True
            _signal(pid, signal.SIGUSR1)
            end = _clock() + 2.0


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        config = orjson.loads(f.read())
    explore_host(config)


if __name__ == "__main__":
    del sys.argv[0]
    sys.argv.insert(0, "tracer-host")
    main()
