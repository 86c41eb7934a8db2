"""asyncio's own thread pool (to_thread) runs the user's function, which takes a user lock:
its worker becomes an actor, and the run must not wait for it forever."""
import asyncio
import threading


def work(lock):
    with lock:
        return 1


async def main():
    lock = threading.Lock()  # (a local passed on: the hand-off is not what is tested here)
    print("got", await asyncio.to_thread(work, lock))


asyncio.run(main())
