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
    ranked = asyncio.PriorityQueue()
    ranked.put_nowait((2, "b"))
    ranked.put_nowait((1, "a"))
    print("first", ranked.get_nowait(), ranked.get_nowait())
    try:
        ranked.get_nowait()
    except asyncio.QueueEmpty:
        print("empty")


asyncio.run(main())
