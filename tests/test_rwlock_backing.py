"""The rwlock's real backings (tracer/prims/rwlock.py), on real threads, processes (the
forkserver context tracer uses) and asyncio tasks.

Actors coordinate through events, barriers and the lock's own observable state (``state()``,
polled against a deadline by ``_until``); no sleep stands in for synchronisation. Timings are
asserted as bounds. Every thread and process is joined.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tracer.prims.rwlock import (
    AsyncRWLock,
    ProcessRWLock,
    RWState,
    ThreadRWLock,
    new_backing,
)

WAIT = 20.0  # seconds any coordination may take on a loaded machine before the test fails
pytestmark = pytest.mark.timeout(60)


def _until(pred: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll an observable condition (the lock's state) until it holds; fail after timeout."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.001)


@contextmanager
def _threads(*targets: Callable[[], None]) -> Iterator[list[threading.Thread]]:
    """Start one thread per target; on the way out join them all (and fail if one is left)."""
    ts = [threading.Thread(target=t, name=f"rw-test-{i}", daemon=True)
          for i, t in enumerate(targets)]
    for t in ts:
        t.start()
    try:
        yield ts
    finally:
        for t in ts:
            t.join(WAIT)
        assert not [t.name for t in ts if t.is_alive()], "a test thread did not end"


# --------------------------------------------------------------------------------------------
# thread flavour


def test_readers_share_and_a_writer_waits_for_all_of_them() -> None:
    rw = ThreadRWLock("RW")
    names = [f"r{i}" for i in range(4)]
    inside = threading.Barrier(len(names) + 1, timeout=WAIT)
    leave = threading.Event()
    got: dict[str, Any] = {}

    def reader(n: str) -> Callable[[], None]:
        def run() -> None:
            got[n] = rw.try_acquire("read", n)
            inside.wait()
            leave.wait(WAIT)
            got[n + ":released"] = rw.release(n)
        return run

    with _threads(*(reader(n) for n in names)):
        inside.wait()
        st = rw.state()
        assert sorted(st.readers) == names, st  # all four hold it at once
        assert st.writer is None
        assert rw.would_grant("read")
        assert not rw.would_grant("write")
        assert not rw.try_acquire("write", "w")
        assert rw.acquire("write", "w", timeout=0.05) is False
        leave.set()
    assert all(got[n] is True and got[n + ":released"] == "read" for n in names), got
    assert rw.state() == RWState((), None, 0)
    assert rw.try_acquire("write", "w")


def test_a_writer_is_exclusive_and_wakes_a_blocked_reader() -> None:
    rw = ThreadRWLock("RW")
    assert rw.acquire("write", "w", timeout=1)
    tries: list[bool] = []
    seen: list[RWState] = []

    def others() -> None:
        tries.extend([rw.try_acquire("read", "r"), rw.try_acquire("write", "x")])

    def blocked_reader() -> None:
        assert rw.acquire("read", "r2", timeout=WAIT)
        seen.append(rw.state())
        rw.release("r2")

    with _threads(others):
        pass
    assert tries == [False, False]
    assert rw.state() == RWState((), "w", 0)
    assert not rw.would_grant("read")
    assert not rw.would_grant("write")
    with _threads(blocked_reader):
        assert rw.held_by("w") == "write"
        assert rw.release("w") == "write"
    assert seen == [RWState(("r2",), None, 0)]  # it got in once the writer had left


def test_a_waiting_writer_holds_new_readers_back() -> None:
    rw = ThreadRWLock("RW")
    assert rw.try_acquire("read", "r1")
    order: list[str] = []
    w_release = threading.Event()

    def writer() -> None:
        assert rw.acquire("write", "w", timeout=WAIT)
        order.append("w")
        w_release.wait(WAIT)
        rw.release("w")

    def late_reader() -> None:
        assert rw.acquire("read", "r2", timeout=WAIT)
        order.append("r2")
        rw.release("r2")

    with _threads(writer):
        _until(lambda: rw.state().writers_waiting == 1, "the writer waits")
        st = rw.state()
        assert st == RWState(("r1",), None, 1, ("w",))
        assert st.blockers("read") == ("w",)
        assert st.blockers("write") == ("r1",)
        # the lock is only read-held, yet a new reader may not join: the writer goes first
        assert not rw.would_grant("read")
        assert not rw.try_acquire("read", "r2")
        with _threads(late_reader):
            rw.release("r1")  # the writer takes it; r2 still waits behind it
            _until(lambda: rw.state().writer == "w", "the writer holds it")
            assert rw.state().readers == ()
            w_release.set()
    assert order == ["w", "r2"]
    assert rw.state() == RWState((), None, 0)


def test_a_writer_that_times_out_lets_the_readers_it_held_back_in() -> None:
    rw = ThreadRWLock("RW")
    assert rw.try_acquire("read", "r1")
    result: dict[str, Any] = {}

    def writer() -> None:
        t0 = time.monotonic()
        result["w"] = rw.acquire("write", "w", timeout=0.3)
        result["w_took"] = time.monotonic() - t0

    def late_reader() -> None:
        result["r2"] = rw.acquire("read", "r2", timeout=WAIT)

    with _threads(writer):
        _until(lambda: rw.state().writers_waiting == 1, "the writer waits")
        with _threads(late_reader):
            pass  # r2 waits behind w; w gives up after 0.3 s; then r2 must get in
    assert result["w"] is False
    assert 0.25 <= result["w_took"] < 5.0, result
    assert result["r2"] is True
    assert rw.state() == RWState(("r1", "r2"), None, 0)


@pytest.mark.parametrize("mode", ["read", "write"])
def test_acquire_times_out_in_about_the_time_given(mode: str) -> None:
    rw = ThreadRWLock("RW")
    assert rw.try_acquire("write", "w")
    t0 = time.monotonic()
    assert rw.acquire(mode, "x", timeout=0.2) is False
    took = time.monotonic() - t0
    assert 0.15 <= took < 3.0, took
    t0 = time.monotonic()
    assert rw.acquire(mode, "x", timeout=0) is False
    assert time.monotonic() - t0 < 0.5
    assert rw.state() == RWState((), "w", 0)  # a timed-out writer leaves no waiting trace


def test_try_never_blocks() -> None:
    rw = ThreadRWLock("RW")
    held = threading.Event()
    leave = threading.Event()

    def holder() -> None:
        rw.acquire("write", "w", timeout=WAIT)
        held.set()
        leave.wait(WAIT)
        rw.release("w")

    with _threads(holder):
        assert held.wait(WAIT)
        t0 = time.monotonic()
        results = {rw.try_acquire(m, "x") for _ in range(500) for m in ("read", "write")}
        took = time.monotonic() - t0
        leave.set()
    assert results == {False}
    assert took < 2.0, f"1000 tries took {took:.2f} s"



def test_many_threads_never_see_a_writer_beside_anyone() -> None:
    rw = ThreadRWLock("RW")
    guard = threading.Lock()
    now = {"read": 0, "write": 0}
    worst = {"read": 0, "write": 0, "write+other": 0}
    start = threading.Barrier(8, timeout=WAIT)

    def actor(i: int) -> Callable[[], None]:
        def run() -> None:
            start.wait()
            for k in range(150):
                mode = "write" if (i + k) % 4 == 0 else "read"
                assert rw.acquire(mode, f"t{i}", timeout=WAIT)
                with guard:
                    now[mode] += 1
                    worst[mode] = max(worst[mode], now[mode])
                    if now["write"] and (now["read"] or now["write"] > 1):
                        worst["write+other"] += 1
                time.sleep(0)  # a switch point while holding (not synchronisation)
                with guard:
                    now[mode] -= 1
                assert rw.release(f"t{i}") == mode
        return run

    with _threads(*(actor(i) for i in range(8))):
        pass
    assert worst["write"] == 1
    assert worst["write+other"] == 0
    assert worst["read"] >= 1
    assert rw.state() == RWState((), None, 0)

# --------------------------------------------------------------------------------------------
# every flavour: misuse, and would_grant/state agree with try


def _flavours() -> list[str]:
    return ["thread", "process", "coroutine"]


def _make(kind: str, owners: tuple[str, ...] = ("a", "b", "w", "x", "probe")) -> Any:
    ctx = multiprocessing.get_context("forkserver") if kind == "process" else None
    return new_backing(kind, "RW", ctx=ctx, owners=owners)


def _release(rw: Any, owner: str) -> str:
    out = rw.release(owner)
    if asyncio.iscoroutine(out):
        return asyncio.run(out)  # type: ignore[no-any-return]
    return out  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", _flavours())
def test_releasing_what_one_does_not_hold_says_so(kind: str) -> None:
    rw = _make(kind)
    with pytest.raises(RuntimeError, match=r"^x released rwlock RW, which it does not hold "
                                           r"\(nobody holds it\)$"):
        _release(rw, "x")
    assert rw.try_acquire("read", "a")
    assert rw.try_acquire("read", "b")
    with pytest.raises(RuntimeError, match=r"^w released rwlock RW, which it does not hold "
                                           r"\(a, b hold it for reading\)$"):
        _release(rw, "w")
    assert _release(rw, "a") == "read"
    with pytest.raises(RuntimeError, match="a released rwlock RW, which it does not hold"):
        _release(rw, "a")  # a second release
    assert rw.state() == RWState(("b",), None, 0)


@pytest.mark.parametrize("kind", _flavours())
def test_an_upgrade_and_a_second_hold_are_refused(kind: str) -> None:
    rw = _make(kind)
    assert rw.try_acquire("read", "a")
    with pytest.raises(RuntimeError, match=r"^a asks for a write of rwlock RW while it holds "
                                           r"a read: a rwlock cannot be upgraded"):
        rw.try_acquire("write", "a")
    with pytest.raises(RuntimeError, match="cannot be upgraded"):
        rw.announce_writer("a")  # nor by waiting for it
    if kind != "coroutine":
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="cannot be upgraded"):
            rw.acquire("write", "a", timeout=5)  # refused at once, not after 5 s
        assert time.monotonic() - t0 < 2
    with pytest.raises(RuntimeError, match=r"a asks for a read of rwlock RW while it holds a "
                                           r"read: a rwlock is not re-entrant"):
        rw.try_acquire("read", "a")
    assert rw.state() == RWState(("a",), None, 0)  # nothing changed
    assert _release(rw, "a") == "read"
    assert rw.try_acquire("write", "w")
    with pytest.raises(RuntimeError, match="w asks for a write of rwlock RW while it holds a "
                                           "write: a rwlock is not re-entrant"):
        rw.try_acquire("write", "w")
    with pytest.raises(RuntimeError, match="not re-entrant"):
        rw.try_acquire("read", "w")
    with pytest.raises(ValueError, match="mode must be 'read' or 'write', not 'exclusive'"):
        rw.try_acquire("exclusive", "b")


@pytest.mark.parametrize("kind", _flavours())
def test_state_and_would_grant_agree_with_try(kind: str) -> None:
    rw = _make(kind)

    def agree(expect: dict[str, bool]) -> None:
        for mode, want in expect.items():
            assert rw.would_grant(mode) is want, (mode, rw.state())
            before = rw.state()
            assert rw.try_acquire(mode, "probe") is want, (mode, before)
            if want:
                after = rw.state()
                assert (after.writer == "probe") if mode == "write" else \
                    (after.readers[-1] == "probe")
                assert _release(rw, "probe") == mode
            assert rw.state() == before

    agree({"read": True, "write": True})  # free
    assert rw.try_acquire("read", "a")
    agree({"read": True, "write": False})  # read-held
    rw.announce_writer("w")  # a writer waits (as a scheduler parks it)
    assert rw.state() == RWState(("a",), None, 1, ("w",))
    agree({"read": False, "write": False})  # read-held, a writer waiting: readers wait too
    _release(rw, "a")
    agree({"read": False, "write": True})  # free, but a writer waits: a write may barge in
    assert rw.try_acquire("write", "w")  # the waiting writer takes it: no longer waiting
    assert rw.state() == RWState((), "w", 0)
    agree({"read": False, "write": False})  # write-held
    _release(rw, "w")
    rw.announce_writer("x")
    withdrawn = rw.withdraw_writer("x")
    if asyncio.iscoroutine(withdrawn):
        withdrawn = asyncio.run(withdrawn)
    assert withdrawn is True
    agree({"read": True, "write": True})



@pytest.mark.parametrize("kind", _flavours())
def test_a_writer_waiting_in_slices_keeps_new_readers_out_between_them(kind: str) -> None:
    rw = _make(kind)

    async def call(out: Any) -> Any:
        return await out if asyncio.iscoroutine(out) else out

    async def main() -> None:
        assert rw.try_acquire("read", "a")
        rw.announce_writer("w")  # as the free run does before its first slice
        for _ in range(3):
            assert await call(rw.acquire("write", "w", timeout=0.02)) is False
            assert rw.state() == RWState(("a",), None, 1, ("w",))  # still waiting
            assert not rw.try_acquire("read", "b")
        assert await call(rw.release("a")) == "read"
        assert await call(rw.acquire("write", "w", timeout=WAIT)) is True
        assert rw.state() == RWState((), "w", 0)
        assert await call(rw.withdraw_writer("w")) is False  # it took the lock: not waiting

    _arun(main())

def test_a_process_rwlock_refuses_an_unknown_owner() -> None:
    rw = _make("process", owners=("a", "b"))
    with pytest.raises(ValueError, match=r"^z is not one of the actors rwlock RW was built for "
                                         r"\(a, b\)$"):
        rw.try_acquire("read", "z")
    with pytest.raises(ValueError, match="needs the names of the actors"):
        _make("process", owners=())
    with pytest.raises(ValueError, match="no backing for actors of kind 'fiber'"):
        new_backing("fiber", "RW")


# --------------------------------------------------------------------------------------------
# process flavour: real child processes (forkserver, as tracer starts process actors)


def _child_reader(rw: ProcessRWLock, name: str, inside: Any, leave: Any, out: Any) -> None:
    ok = rw.acquire("read", name, timeout=WAIT)
    inside.wait(WAIT)
    leave.wait(WAIT)
    out.put((name, ok, rw.release(name)))


def _child_writer(rw: ProcessRWLock, got: Any, leave: Any, out: Any) -> None:
    ok = rw.acquire("write", "w", timeout=WAIT)
    out.put(("w", ok, rw.state()))
    got.set()
    leave.wait(WAIT)
    out.put(("w", "released", rw.release("w")))


def _child_misuse(rw: ProcessRWLock, out: Any) -> None:
    try:
        rw.release("a")
    except RuntimeError as exc:
        out.put(str(exc))


def _join(procs: list[Any]) -> None:
    for p in procs:
        p.join(WAIT)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
        p.join(WAIT)
    assert not alive, "a child process did not end"
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_processes_read_together() -> None:
    ctx = multiprocessing.get_context("forkserver")
    names = ["p0", "p1", "p2"]
    rw = ProcessRWLock("RW", ctx, [*names, "main"])
    inside, leave, out = ctx.Barrier(len(names) + 1), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_child_reader, args=(rw, n, inside, leave, out)) for n in names]
    for p in procs:
        p.start()
    try:
        inside.wait(WAIT)
        st = rw.state()  # read from the shared memory the children write
        assert sorted(st.readers) == names, st
        assert not rw.would_grant("write")
        assert not rw.try_acquire("write", "main")
        assert rw.try_acquire("read", "main")  # readers share, also with the parent
        assert rw.release("main") == "read"
        leave.set()
        results = sorted(out.get(timeout=WAIT) for _ in names)
    finally:
        leave.set()
        _join(procs)
    assert results == [(n, True, "read") for n in names]
    assert rw.state() == RWState((), None, 0)


def test_a_process_writer_is_preferred_exclusive_and_times_others_out() -> None:
    ctx = multiprocessing.get_context("forkserver")
    rw = ProcessRWLock("RW", ctx, ["main", "w", "r"])
    got, leave, out = ctx.Event(), ctx.Event(), ctx.Queue()
    assert rw.try_acquire("read", "main")
    p = ctx.Process(target=_child_writer, args=(rw, got, leave, out))
    p.start()
    try:
        _until(lambda: rw.state().writers_waiting == 1, "the child writer waits")
        assert rw.state() == RWState(("main",), None, 1, ("w",))
        assert not rw.try_acquire("read", "r")  # writer preference, across processes
        t0 = time.monotonic()
        assert rw.acquire("read", "r", timeout=0.2) is False
        assert 0.15 <= time.monotonic() - t0 < 3.0
        assert not got.is_set()  # the child cannot write while the parent reads
        rw.release("main")  # now the child takes the write
        assert got.wait(WAIT)
        name, ok, seen = out.get(timeout=WAIT)
        assert (name, ok, seen) == ("w", True, RWState((), "w", 0))
        assert not rw.try_acquire("read", "r")
        assert not rw.try_acquire("write", "main")
        t0 = time.monotonic()
        assert rw.acquire("write", "main", timeout=0.2) is False
        assert 0.15 <= time.monotonic() - t0 < 3.0
        leave.set()
        assert out.get(timeout=WAIT) == ("w", "released", "write")
    finally:
        leave.set()
        _join([p])
    assert rw.try_acquire("read", "r")


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_process_rwlock_travels_to_a_child(method: str) -> None:
    ctx: Any = multiprocessing.get_context(method)
    rw = ProcessRWLock("RW", ctx, ["a", "b"])
    assert rw.try_acquire("read", "b")
    out = ctx.Queue()
    p = ctx.Process(target=_child_misuse, args=(rw, out))
    p.start()
    try:
        msg = out.get(timeout=WAIT)
    finally:
        _join([p])
    assert msg == "a released rwlock RW, which it does not hold (b holds it for reading)"


# --------------------------------------------------------------------------------------------
# coroutine flavour


def _arun(coro: Any) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, WAIT)
    return asyncio.run(bounded())


async def _until_async(pred: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0)  # let the other tasks run


def test_coroutines_read_together_and_a_writer_waits() -> None:
    async def main() -> None:
        rw = AsyncRWLock("RW")
        names = ["c0", "c1", "c2"]
        leave = asyncio.Event()

        async def reader(n: str) -> str:
            assert await rw.acquire("read", n, timeout=WAIT)
            await leave.wait()
            return await rw.release(n)

        tasks = [asyncio.create_task(reader(n)) for n in names]
        await _until_async(lambda: len(rw.state().readers) == 3, "all three read")
        assert sorted(rw.state().readers) == names
        assert not rw.would_grant("write")
        assert not rw.try_acquire("write", "w")
        t0 = time.monotonic()
        assert await rw.acquire("write", "w", timeout=0.2) is False
        assert 0.15 <= time.monotonic() - t0 < 3.0
        assert rw.state() == RWState(tuple(rw.state().readers), None, 0)  # it withdrew
        leave.set()
        assert await asyncio.gather(*tasks) == ["read"] * 3
        assert await rw.acquire("write", "w", timeout=1)
        assert rw.state() == RWState((), "w", 0)

    _arun(main())


def test_a_waiting_coroutine_writer_goes_before_new_readers() -> None:
    async def main() -> list[str]:
        rw = AsyncRWLock("RW")
        order: list[str] = []
        w_leave = asyncio.Event()
        assert rw.try_acquire("read", "r1")

        async def writer() -> None:
            assert await rw.acquire("write", "w", timeout=WAIT)
            order.append("w")
            await w_leave.wait()
            await rw.release("w")

        async def late_reader() -> None:
            assert await rw.acquire("read", "r2", timeout=WAIT)
            order.append("r2")
            await rw.release("r2")

        wt = asyncio.create_task(writer())
        await _until_async(lambda: rw.state().writers_waiting == 1, "the writer waits")
        assert not rw.try_acquire("read", "r2")
        rt = asyncio.create_task(late_reader())
        await asyncio.sleep(0)  # a turn for r2 to start waiting (it must not get in)
        assert rw.state().readers == ("r1",)
        await rw.release("r1")
        await _until_async(lambda: rw.state().writer == "w", "the writer holds it")
        assert rw.state().readers == ()
        w_leave.set()
        await asyncio.gather(wt, rt)
        return order

    assert _arun(main()) == ["w", "r2"]


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_a_coroutine_writer_that_gives_up_lets_readers_in(how: str) -> None:
    async def main() -> None:
        rw = AsyncRWLock("RW")
        assert rw.try_acquire("read", "r1")
        t0 = time.monotonic()
        wt = asyncio.create_task(
            rw.acquire("write", "w", timeout=0.2 if how == "timeout" else None))
        await _until_async(lambda: rw.state().writers_waiting == 1, "the writer waits")
        rt = asyncio.create_task(rw.acquire("read", "r2", timeout=WAIT))
        await asyncio.sleep(0)
        assert not rt.done()  # held back by the waiting writer
        if how == "timeout":
            assert await wt is False
            assert 0.15 <= time.monotonic() - t0 < 3.0
        else:
            wt.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wt
        assert await rt is True  # the writer withdrew: r2 reads beside r1
        assert rw.state() == RWState(("r1", "r2"), None, 0)

    _arun(main())

