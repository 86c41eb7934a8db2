"""Main hands the pool a task that waits for an event nobody sets, and ends without waiting
for it or shutting the pool down: the interpreter would wait for the worker at exit, forever."""
import threading
from concurrent.futures import ThreadPoolExecutor

never = threading.Event()


def task():
    never.wait()


pool = ThreadPoolExecutor(max_workers=1)
pool.submit(task)
print("main is done")
