import asyncio

results = []


async def add(lock, k):
    for i in range(3):
        async with lock:
            results.append((k, i))
        await asyncio.sleep(0)


async def main():
    lock = asyncio.Lock()
    tasks = [asyncio.create_task(add(lock, k)) for k in range(3)]
    await asyncio.gather(*tasks)
    q = asyncio.Queue(maxsize=2)
    await q.put(len(results))
    print("total", await q.get())


asyncio.run(main())
