import asyncio


async def producer(jobs, sem, cond, state):
    for i in range(3):
        async with sem:
            await jobs.put(i)
    async with cond:
        state["done"] = True
        cond.notify_all()


async def consumer(jobs, cond, state, guarded):
    async with cond:
        await cond.wait_for(lambda: state["done"])
    for _ in range(3):
        await jobs.get()
    async with guarded:
        guarded.notify()


async def main():
    sem = asyncio.BoundedSemaphore(2)
    cond = asyncio.Condition()
    jobs = asyncio.Queue()
    lock = asyncio.Lock()
    guarded = asyncio.Condition(lock)
    state = {"done": False}
    async with asyncio.TaskGroup() as tg:
        tg.create_task(consumer(jobs, cond, state, guarded), name="consumer")
        tg.create_task(producer(jobs, sem, cond, state), name="producer")
    print("done")


asyncio.run(main())
