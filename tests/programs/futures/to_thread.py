"""asyncio's own thread pool (to_thread) runs the user's function, which takes a user lock:
its worker becomes an actor, and the run must not wait for it forever."""
import asyncio
import threading

lock = threading.Lock()


def work():
    with lock:
        return 1


async def main():
    print("got", await asyncio.to_thread(work))


asyncio.run(main())
