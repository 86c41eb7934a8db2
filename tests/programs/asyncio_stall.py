import asyncio


async def waiter(ready):
    await ready.wait()


async def main():
    ready = asyncio.Event()
    await asyncio.gather(waiter(ready), waiter(ready))


asyncio.run(main())
