import asyncio

state = {"n": 0}


async def bump(lock: asyncio.Lock) -> None:
    async with lock:
        v = state["n"]
        await asyncio.sleep(0)
        state["n"] = v + 1


async def main() -> None:
    lock = asyncio.Lock()
    await asyncio.gather(*(bump(lock) for _ in range(3)))
    print(state["n"])


asyncio.run(main())
