import asyncio


async def boom():
    await asyncio.sleep(0)
    raise ValueError("no more tickets")


async def forever(started):
    started.set()
    await asyncio.Event().wait()


async def main():
    started = asyncio.Event()
    sleeper = asyncio.create_task(forever(started), name="sleeper")
    await started.wait()
    sleeper.cancel()
    try:
        await sleeper
    except asyncio.CancelledError:
        print("sleeper cancelled")
    await asyncio.create_task(boom(), name="seller")


asyncio.run(main())
