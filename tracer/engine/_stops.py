"""SIGTERM and SIGHUP end a run the way Ctrl-C does: outcome ``interrupted``, trace kept.

Ctrl-C works because Python turns SIGINT into ``KeyboardInterrupt`` in the main thread, which
is the runner's watchdog: it stops the actors, tears the run down and returns the trace.
:func:`stop_on_signals` gives SIGTERM and SIGHUP the same path: their handler raises
:class:`Stopped`, a ``KeyboardInterrupt``. Only the first one counts (the run is ending).

A signal must not land at any point of a run's main thread: it could cut a Manager's or a
child's start in half, or leave a scheduler's lock taken, and the teardown would hang. So a run
is *shielded* (:func:`shielded`): a signal there is only noted, and the watchdog raises it at
its next look (:func:`raise_pending`), where the run ends as on Ctrl-C. Outside a run (between
an exploration's runs, during an analysis) it is raised at once. After the last run, the
command sees :data:`STOPS` ``.got`` and exits 128 + the signal's number.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) arrived: the run ends as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.signame = signal.Signals(signum).name


class Stops:
    """The stop signals of this process: what arrived, and whether it may be raised now."""

    def __init__(self) -> None:
        self.shield = 0  # > 0: a run is starting or ending; a signal waits for the watchdog
        self.pending: int | None = None  # arrived under the shield, not raised yet
        self.got: int | None = None  # the first stop signal received

    def reset(self) -> None:
        self.shield, self.pending, self.got = 0, None, None


STOPS = Stops()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if STOPS.got is not None:
        return  # one stop is enough: the run is already ending
    STOPS.got = signum
    if STOPS.shield:
        STOPS.pending = signum
        return
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[Stops]:
    """While inside: SIGTERM and SIGHUP raise :class:`Stopped` (see the module's comment).
    Outside the main thread (where Python cannot install handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield STOPS
        return
    STOPS.reset()
    old = {s: signal.signal(s, _on_signal) for s in STOP_SIGNALS}
    try:
        yield STOPS
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def shielded() -> Iterator[None]:
    """A part of a run that a stop signal must not cut short (it is raised later)."""
    STOPS.shield += 1
    try:
        yield
    finally:
        STOPS.shield -= 1


def raise_pending() -> None:
    """Raise the stop signal that arrived under the shield, if any (the watchdog's look)."""
    signum = STOPS.pending
    if signum is not None:
        STOPS.pending = None
        raise Stopped(signum)


def interrupted_by(exc: KeyboardInterrupt) -> str:
    """How an interrupted run's outcome names its cause."""
    if isinstance(exc, Stopped):
        return f"interrupted by {exc.signame}"
    return "interrupted by Ctrl-C"
