"""Two pool tasks take two locks in opposite orders (a barrier makes the deadlock certain);
main waits in the pool's `with` block."""
import threading
from concurrent.futures import ThreadPoolExecutor

lock_a = threading.Lock()
lock_b = threading.Lock()
ready = threading.Barrier(2)


def one(first, second):
    with first:
        ready.wait()
        with second:
            pass


with ThreadPoolExecutor(max_workers=2) as pool:
    pool.submit(one, lock_a, lock_b)
    pool.submit(one, lock_b, lock_a)
