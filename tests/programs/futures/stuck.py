"""The task waits for an event nobody sets; main waits for the task: in result() or, with
``--as-completed``, iterating as_completed. The run stalls, and says who waits for what."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

never = threading.Event()


def task():
    never.wait()


pool = ThreadPoolExecutor(max_workers=1)
fut = pool.submit(task)
if "--as-completed" in sys.argv:
    for f in as_completed([fut]):
        print(f.result())
else:
    print(fut.result())
