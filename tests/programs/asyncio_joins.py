import asyncio

seen = []


async def work(n):
    await asyncio.sleep(0)
    seen.append(n)
    return n


async def slow():
    await asyncio.sleep(10)


async def main():
    first = asyncio.create_task(work(1), name="first")
    later = asyncio.ensure_future(work(2))
    await asyncio.sleep(0.01)
    # both are done already: awaiting them is still a join
    print("first", await first)
    print("both", await asyncio.gather(first, later))
    print("wait_for", await asyncio.wait_for(work(3), 5))
    try:
        await asyncio.wait_for(slow(), 0.01)
    except asyncio.TimeoutError:
        print("timed out")
    print(type(first).__name__, isinstance(first, asyncio.Task), sorted(seen))


asyncio.run(main())
