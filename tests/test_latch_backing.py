"""The latch's real backings (``tracer.prims.latch``), under real threads, processes and
asyncio tasks.

Orders between actors are made with events and joins, never sleeps. To check that a waiter is
really blocked inside the primitive (so the release goes through the real wake-up), a test
waits, with a deadline, until the real condition or event lists it as a sleeper. Every thread
and process is joined before its test ends; the module's fixture checks that none is left.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tracer.prims import latch as latch_mod
from tracer.prims.latch import (
    AsyncLatch,
    LatchCountError,
    LatchState,
    ProcessLatch,
    ThreadLatch,
    make_latch,
)

pytestmark = pytest.mark.timeout(60)

PREFIX = "latch-test:"
BELOW_ZERO = "w counted latch wg down by 2 from 1: a count cannot go below zero"


@pytest.fixture(autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    threads = [t.name for t in threading.enumerate() if t.name.startswith(PREFIX) and t.is_alive()]
    assert not threads, f"threads outlived the test: {threads}"
    children = multiprocessing.active_children()
    assert not children, f"processes outlived the test: {children}"


def until(predicate: Callable[[], bool], within: float = 10.0) -> bool:
    """Whether ``predicate`` becomes true within ``within`` seconds (it is checked, with a
    deadline, until then: this waits for a state, it orders nothing)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def thread(target: Callable[..., Any], *args: Any) -> threading.Thread:
    t = threading.Thread(target=target, args=args, name=f"{PREFIX}{target.__name__}", daemon=True)
    t.start()
    return t


def join_all(*workers: Any) -> None:
    """Join threads or processes; a process still alive after its time is killed, then the
    test fails (a backing that does not release its waiters must not leave them behind)."""
    stuck = []
    for w in workers:
        w.join(15)
        if w.is_alive():
            stuck.append(w.name)
            if isinstance(w, multiprocessing.process.BaseProcess):
                w.kill()
                w.join(5)
    assert not stuck, f"still running: {stuck}"


def thread_sleepers(latch: ThreadLatch) -> int:
    return len(latch._cond._waiters)


# --------------------------------------------------------------------------------------------
# every flavour: the same sequential facts


def flavours() -> list[Any]:
    return ["thread", "process", "coroutine"]


def build(flavour: str, count: int) -> Any:
    ctx = multiprocessing.get_context("forkserver")
    return make_latch(flavour, "wg", count, ctx if flavour == "process" else None)


@pytest.mark.parametrize("flavour", flavours())
def test_count_down_count_up_and_state(flavour: str) -> None:
    latch = build(flavour, 2)
    assert latch.state() == LatchState(2)
    assert not latch.try_wait()
    assert latch.count_down() == 1
    assert latch.count_up(3) == 4  # count_up raises the count
    assert latch.state() == LatchState(4)
    assert latch.count_down(3) == 1
    assert not latch.try_wait()
    assert latch.count_down() == 0
    assert latch.try_wait()
    assert latch.epoch() == 1
    # reuse (Go's rule): count_up on a latch at zero starts a new round
    assert latch.count_up() == 1
    assert not latch.try_wait()
    assert latch.state() == LatchState(1)


@pytest.mark.parametrize("flavour", flavours())
def test_below_zero_is_refused_and_the_count_is_unchanged(flavour: str) -> None:
    latch = build(flavour, 1)
    with pytest.raises(LatchCountError) as info:
        latch.count_down(2, actor="w")
    err = info.value
    assert isinstance(err, ValueError)
    assert str(err) == BELOW_ZERO
    assert (err.latch, err.verb, err.n, err.count, err.actor) == ("wg", "count_down", 2, 1, "w")
    assert latch.state() == LatchState(1)
    assert not latch.try_wait()  # a refused count_down releases nobody
    with pytest.raises(ValueError, match=r"^latch wg was counted down by 2 from 1: a count "):
        latch.count_down(2)
    latch.count_down()
    with pytest.raises(LatchCountError, match="counted latch wg down by 1 from 0"):
        latch.count_down(actor="w")
    assert latch.state() == LatchState(0)
    assert latch.try_wait()


@pytest.mark.parametrize("flavour", flavours())
def test_count_up_beyond_the_maximum_is_refused(flavour: str) -> None:
    latch = build(flavour, latch_mod.MAX_COUNT - 1)
    latch.count_up()
    top = "9223372036854775807"
    text = rf"^w counted latch wg up by 1 from {top}: a count cannot go above {top}$"
    with pytest.raises(LatchCountError, match=text):
        latch.count_up(actor="w")
    assert latch.state() == LatchState(latch_mod.MAX_COUNT)


@pytest.mark.parametrize("flavour", flavours())
def test_a_zero_missed_between_two_turns_is_seen_through_since(flavour: str) -> None:
    """A waiter that waits in turns notes the epoch of its first turn: a count that reached
    zero and went up again between two turns still lets it through."""
    latch = build(flavour, 1)
    first = latch.epoch()
    latch.count_down()
    latch.count_up()
    assert not latch.try_wait()  # a new waiter waits for the new round
    assert latch.try_wait(since=first)  # the one of the first turn saw its zero
    assert not latch.try_wait(since=latch.epoch())


@pytest.mark.parametrize(("n", "error", "text"), [
    (0, ValueError, "count_down takes n of at least 1, not 0"),
    (-1, ValueError, "count_down takes n of at least 1, not -1"),
    (True, TypeError, "count_down takes a whole number n, not True"),
    (1.5, TypeError, "count_down takes a whole number n, not 1.5"),
    ("2", TypeError, "count_down takes a whole number n, not '2'"),
])
def test_bad_n_is_refused(n: Any, error: type[Exception], text: str) -> None:
    for flavour in ("thread", "coroutine"):
        latch = build(flavour, 3)
        with pytest.raises(error) as info:
            latch.count_down(n)
        assert str(info.value) == text
        with pytest.raises(error):
            latch.count_up(n)
        assert latch.state() == LatchState(3)


@pytest.mark.parametrize(("count", "error"), [
    (-1, ValueError), (2**63, ValueError), (True, TypeError), (2.0, TypeError), (None, TypeError),
])
def test_bad_initial_count_is_refused(count: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="a latch's count is"):
        ThreadLatch("wg", count)
    with pytest.raises(error, match="a latch's count is"):
        AsyncLatch("wg", count)


def test_make_latch_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="needs the run's multiprocessing context"):
        make_latch("process", "wg", 1)
    with pytest.raises(ValueError, match="no latch for 'pool' actors"):
        make_latch("pool", "wg", 1)
    assert isinstance(make_latch("thread", "wg", 0), ThreadLatch)
    assert isinstance(make_latch("coroutine", "wg", 0), AsyncLatch)


def test_the_module_stays_in_its_lane() -> None:
    """tracer.prims imports nothing of the engine and friends (at run time: annotations may
    name the engine's classes under TYPE_CHECKING), and the latch is registered."""
    import ast
    import inspect

    import tracer.prims

    tree = ast.parse(inspect.getsource(latch_mod))
    guarded = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    imported = {alias.name for node in ast.walk(tree)
                if isinstance(node, ast.Import) and id(node) not in guarded
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and id(node) not in guarded}
    assert {m for m in imported if m.startswith("tracer")} <= {
        "tracer.prims._facts", "tracer.prims._options", "tracer.prims._shell"}, imported
    assert latch_mod.NAME == "latch"
    assert "latch" in tracer.prims.MODULES


# --------------------------------------------------------------------------------------------
# thread flavour: real threads


def test_thread_wait_returns_once_the_last_count_down_happened() -> None:
    latch = ThreadLatch("wg", 3)
    go = [threading.Event() for _ in range(3)]
    counted = [threading.Event() for _ in range(3)]
    returned = threading.Event()
    result: list[bool] = []

    def worker(i: int) -> None:
        if go[i].wait(20):
            latch.count_down(actor=f"w{i}")
            counted[i].set()

    def waiter() -> None:
        result.append(latch.wait(timeout=30))
        returned.set()

    threads = [thread(waiter)] + [thread(worker, i) for i in range(3)]
    try:
        assert until(lambda: thread_sleepers(latch) == 1)
        for i in range(3):
            assert not latch.try_wait()
            assert not returned.is_set(), f"the waiter returned after {i} of 3 count_downs"
            go[i].set()
            assert counted[i].wait(10)
            assert latch.state() == LatchState(2 - i)
        assert returned.wait(10)
        assert result == [True]
        assert latch.try_wait()
    finally:
        for e in go:
            e.set()
        join_all(*threads)


def test_thread_several_waiters_are_all_released() -> None:
    latch = ThreadLatch("wg", 1)
    results: list[bool] = []
    lock = threading.Lock()

    def waiter() -> None:
        r = latch.wait(timeout=30)
        with lock:
            results.append(r)

    threads = [thread(waiter) for _ in range(4)]
    try:
        assert until(lambda: thread_sleepers(latch) == 4)
        assert results == []
        latch.count_down(actor="main")
    finally:
        join_all(*threads)
    assert results == [True] * 4


def test_thread_waiters_of_a_round_are_released_even_if_the_count_goes_up_again() -> None:
    """Go's rule: the last count_down of a round releases that round's waiters, though a
    count_up follows before they have run."""
    latch = ThreadLatch("wg", 1)
    results: list[bool] = []

    def waiter() -> None:
        results.append(latch.wait(timeout=30))

    threads = [thread(waiter), thread(waiter)]
    try:
        assert until(lambda: thread_sleepers(latch) == 2)
        with latch._cond:  # hold the lock: the woken waiters cannot run before the count_up
            latch.count_down()
            latch.count_up()
    finally:
        join_all(*threads)
    assert results == [True, True]
    assert latch.state() == LatchState(1)
    assert not latch.wait(timeout=0)  # a later waiter waits for the new round


def test_thread_wait_times_out_within_a_bound() -> None:
    latch = ThreadLatch("wg", 1)
    t0 = time.monotonic()
    assert latch.wait(timeout=0.2) is False
    elapsed = time.monotonic() - t0
    assert 0.19 <= elapsed < 5
    t0 = time.monotonic()
    assert latch.wait(timeout=0) is False
    assert latch.wait(timeout=-1) is False
    assert time.monotonic() - t0 < 1
    assert latch.state() == LatchState(1)
    latch.count_down()
    assert latch.wait(timeout=0) is True


def test_thread_try_and_counting_never_block_while_others_wait() -> None:
    latch = ThreadLatch("wg", 2)
    threads = [thread(latch.wait, 30) for _ in range(2)]
    try:
        assert until(lambda: thread_sleepers(latch) == 2)
        t0 = time.monotonic()
        for _ in range(1000):
            assert not latch.try_wait()
            latch.count_up(actor="main")
            latch.count_down(actor="main")
        assert time.monotonic() - t0 < 5
        assert latch.state() == LatchState(2)
    finally:
        latch.count_down(2)
        join_all(*threads)


def test_thread_wait_in_turns_with_since_misses_no_zero() -> None:
    """A waiter waiting in short turns (as a scheduler's slices) sees a zero that happened
    while it was between two turns."""
    latch = ThreadLatch("wg", 1)
    first = latch.epoch()
    assert not latch.wait(timeout=0.01, since=first)
    latch.count_down()
    latch.count_up()
    assert latch.wait(timeout=0.01, since=first)
    assert not latch.wait(timeout=0.01)


# --------------------------------------------------------------------------------------------
# process flavour: real children started with forkserver (and fork, spawn)


def _proc_wait(latch: ProcessLatch, result: Any, timeout: float) -> None:
    """A child that waits and writes 1 (returned), 0 (timed out) and its wait's duration."""
    t0 = time.monotonic()
    ok = latch.wait(timeout=timeout)
    result[1] = time.monotonic() - t0
    result[0] = 1.0 if ok else 0.0


def _proc_count(latch: ProcessLatch, go: Any, verb: str, n: int, actor: str, out: Any) -> None:
    """A child that, once ``go`` is set, counts the latch down or up and sends back the new
    count or the error's message."""
    if not go.wait(30):
        out.send(("no go", ""))
        return
    try:
        new = latch.count_down(n, actor=actor) if verb == "down" else latch.count_up(n, actor=actor)
    except LatchCountError as exc:
        out.send(("refused", str(exc)))
    else:
        out.send(("ok", str(new)))
    out.close()


def mp_sleepers(latch: ProcessLatch) -> int:
    """Processes sleeping in the latch's multiprocessing condition (no notify sent yet)."""
    cond = latch._cond
    return int(cond._sleeping_count.get_value()) - int(cond._woken_count.get_value())


@pytest.fixture
def ctx() -> Any:
    return multiprocessing.get_context("forkserver")


def test_process_wait_returns_once_the_last_count_down_happened(ctx: Any) -> None:
    latch = ProcessLatch("wg", 3, ctx)
    result = ctx.Array("d", [-1.0, -1.0])
    waiter = ctx.Process(target=_proc_wait, args=(latch, result, 30.0), name="waiter")
    gos = [ctx.Event() for _ in range(3)]
    pipes = [ctx.Pipe(duplex=False) for _ in range(3)]
    workers = [ctx.Process(target=_proc_count, name=f"w{i}",
                           args=(latch, gos[i], "down", 1, f"w{i}", pipes[i][1]))
               for i in range(3)]
    procs = [waiter, *workers]
    for p in procs:
        p.start()
    try:
        assert until(lambda: mp_sleepers(latch) == 1, 30)
        for i in range(3):
            assert not latch.try_wait()
            assert result[0] == -1.0 and waiter.is_alive(), (
                f"the waiter returned after {i} of 3 count_downs")
            gos[i].set()
            assert pipes[i][0].poll(20)
            assert pipes[i][0].recv() == ("ok", str(2 - i))
            assert latch.state() == LatchState(2 - i)  # the count is in shared memory
        waiter.join(20)
        assert waiter.exitcode == 0
        assert result[0] == 1.0
        assert latch.try_wait()
    finally:
        for e in gos:
            e.set()
        join_all(*procs)


def test_process_several_waiters_released_and_a_child_counts_up(ctx: Any) -> None:
    latch = ProcessLatch("wg", 1, ctx)
    results = [ctx.Array("d", [-1.0, -1.0]) for _ in range(2)]
    waiters = [ctx.Process(target=_proc_wait, args=(latch, r, 30.0)) for r in results]
    go = ctx.Event()
    recv, send = ctx.Pipe(duplex=False)
    upper = ctx.Process(target=_proc_count, args=(latch, go, "up", 2, "u", send))
    procs = [*waiters, upper]
    for p in procs:
        p.start()
    try:
        assert until(lambda: mp_sleepers(latch) == 2, 30)
        go.set()
        assert recv.poll(20)
        assert recv.recv() == ("ok", "3")  # a child's count_up, seen by the parent
        assert latch.state() == LatchState(3)
        assert latch.count_down(2, actor="main") == 1
        assert all(r[0] == -1.0 for r in results)
        assert latch.count_down(actor="main") == 0
        for w in waiters:
            w.join(20)
        assert [r[0] for r in results] == [1.0, 1.0]
    finally:
        go.set()
        if not latch.try_wait():
            latch.count_down(latch.state().count)
        join_all(*procs)


def test_process_below_zero_refused_in_a_child_and_wait_times_out(ctx: Any) -> None:
    latch = ProcessLatch("wg", 1, ctx)
    go = ctx.Event()
    go.set()
    recv, send = ctx.Pipe(duplex=False)
    misuser = ctx.Process(target=_proc_count, args=(latch, go, "down", 2, "w", send))
    result = ctx.Array("d", [-1.0, -1.0])
    waiter = ctx.Process(target=_proc_wait, args=(latch, result, 0.3))
    misuser.start()
    waiter.start()
    try:
        assert recv.poll(20)
        assert recv.recv() == ("refused", BELOW_ZERO)
        assert latch.state() == LatchState(1)
        waiter.join(20)
        assert waiter.exitcode == 0
        assert result[0] == 0.0  # timed out: the refused count_down released nobody
        assert 0.29 <= result[1] < 10
    finally:
        join_all(misuser, waiter)


def test_process_try_and_counting_never_block_while_a_child_waits(ctx: Any) -> None:
    latch = ProcessLatch("wg", 1, ctx)
    result = ctx.Array("d", [-1.0, -1.0])
    waiter = ctx.Process(target=_proc_wait, args=(latch, result, 30.0))
    waiter.start()
    try:
        assert until(lambda: mp_sleepers(latch) == 1, 30)
        t0 = time.monotonic()
        for _ in range(200):
            assert not latch.try_wait()
            latch.count_up()
            latch.count_down()
        assert time.monotonic() - t0 < 5
        assert latch.wait(timeout=0.05) is False
    finally:
        latch.count_down()
        join_all(waiter)
    assert result[0] == 1.0


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_latch_pickles_to_children_of_every_start_method(method: str) -> None:
    mp = multiprocessing.get_context(method)
    latch = ProcessLatch("wg", 2, mp)
    go = mp.Event()
    go.set()
    pipes = [mp.Pipe(duplex=False) for _ in range(2)]
    workers = [mp.Process(target=_proc_count, args=(latch, go, "down", 1, f"w{i}", pipes[i][1]))
               for i in range(2)]
    for w in workers:
        w.start()
    try:
        assert latch.wait(timeout=30)
        assert sorted(p[0].recv()[1] for p in pipes) == ["0", "1"]
        assert latch.state() == LatchState(0)
    finally:
        join_all(*workers)


# --------------------------------------------------------------------------------------------
# coroutine flavour: real asyncio tasks


def test_coroutine_wait_returns_once_the_last_count_down_happened() -> None:
    async def main() -> None:
        latch = AsyncLatch("wg", 3)
        go = [asyncio.Event() for _ in range(3)]
        counted = [asyncio.Event() for _ in range(3)]

        async def worker(i: int) -> None:
            await go[i].wait()
            latch.count_down(actor=f"w{i}")
            counted[i].set()

        waiter = asyncio.create_task(latch.wait(timeout=30))
        workers = [asyncio.create_task(worker(i)) for i in range(3)]
        try:
            while len(latch._zero._waiters) < 1:  # type: ignore[attr-defined]
                await asyncio.sleep(0)  # let the waiter reach its await
            for i in range(3):
                assert not latch.try_wait()
                assert not waiter.done(), f"the waiter returned after {i} of 3 count_downs"
                go[i].set()
                await asyncio.wait_for(counted[i].wait(), 10)
                assert latch.state() == LatchState(2 - i)
            assert await asyncio.wait_for(waiter, 10) is True
        finally:
            for e in go:
                e.set()
            await asyncio.wait_for(asyncio.gather(waiter, *workers), 10)

    asyncio.run(main())


def test_coroutine_several_waiters_released_even_if_the_count_goes_up_again() -> None:
    async def main() -> None:
        latch = AsyncLatch("wg", 1)
        waiters = [asyncio.create_task(latch.wait(timeout=30)) for _ in range(3)]
        while len(latch._zero._waiters) < 3:  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        assert not any(w.done() for w in waiters)
        latch.count_down()
        latch.count_up()  # before any waiter has run again
        results = await asyncio.wait_for(asyncio.gather(*waiters), 10)
        assert results == [True, True, True]
        assert latch.state() == LatchState(1)
        assert not latch.try_wait()
        assert await latch.wait(timeout=0.01) is False  # a later waiter waits for the new round

    asyncio.run(main())


def test_coroutine_wait_times_out_within_a_bound_and_try_never_awaits() -> None:
    async def main() -> None:
        latch = AsyncLatch("wg", 1)
        t0 = time.monotonic()
        assert await latch.wait(timeout=0.2) is False
        assert 0.19 <= time.monotonic() - t0 < 5
        assert await latch.wait(timeout=0) is False
        assert latch.state() == LatchState(1)
        # try_wait, count_down and count_up are plain calls, not coroutines
        assert latch.try_wait() is False
        assert latch.count_up() == 2
        assert latch.count_down(2) == 0
        assert await latch.wait(timeout=0) is True
        assert await latch.wait() is True

    asyncio.run(main())


def test_coroutine_below_zero_refused_releases_nobody() -> None:
    async def main() -> None:
        latch = AsyncLatch("wg", 1)
        waiter = asyncio.create_task(latch.wait(timeout=0.3))

        async def misuser() -> str:
            try:
                latch.count_down(2, actor="w")
            except LatchCountError as exc:
                return str(exc)
            return "accepted"

        assert await misuser() == BELOW_ZERO
        assert await asyncio.wait_for(waiter, 10) is False
        assert latch.state() == LatchState(1)

    asyncio.run(main())
