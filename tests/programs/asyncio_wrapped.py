import asyncio


async def user(lock):
    async with lock:
        await asyncio.sleep(0)
    return 7


async def main():
    lock = asyncio.Lock()
    t = asyncio.create_task(asyncio.wait_for(user(lock), 1), name="wrapped")
    print(await t, await asyncio.shield(user(lock)))


asyncio.run(main())
