import asyncio


async def worker(first, second, mine, theirs):
    async with first:
        mine.set()
        await theirs.wait()
        async with second:
            pass


async def main():
    lock_a = asyncio.Lock()
    lock_b = asyncio.Lock()
    a_held = asyncio.Event()
    b_held = asyncio.Event()
    await asyncio.gather(
        asyncio.create_task(worker(lock_a, lock_b, a_held, b_held), name="left"),
        asyncio.create_task(worker(lock_b, lock_a, b_held, a_held), name="right"),
    )


asyncio.run(main())
