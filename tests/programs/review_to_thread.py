import asyncio
box = {}
def blocking(n):
    box["v"] = n
    return n
async def main():
    r = await asyncio.to_thread(blocking, 3)
    print(box["v"], r)
    loop = asyncio.get_running_loop()
    r2 = await loop.run_in_executor(None, blocking, 4)
    print(box["v"], r2)
asyncio.run(main())
