"""Async functions, await and yield in every position, generators, async generators."""

import asyncio


class State:
    def __init__(self):
        self.value = 0
        self.seen = []


state = State()


async def get(n):
    await asyncio.sleep(0)
    return n


async def work():
    state.value = await get(1)
    state.value += await get(2)
    state.seen.append(await get(3))
    d = {"k": 0}
    d["k"] += await get(4)
    async with asyncio.Lock() as _:
        state.seen.append("locked")
    async for v in agen():
        state.seen.append(v)
    results = await asyncio.gather(get(5), get(6))
    return d, results


async def agen():
    for i in range(2):
        state.value += 1
        yield i


def gen():
    received = yield state.value
    state.seen.append(received)
    state.value = yield "second"
    yield from [state.value, state.value * 2]


out = asyncio.run(work())
g = gen()
first = next(g)
second = g.send("sent")
rest = [g.send(100), *g]
print(out, state.value, state.seen, first, second, rest)
