"""Main writes x, hands a task that reads it to a thread pool, takes the task's result, and
writes x again: correctly synchronised by submit -> run -> result().

The shared accesses are written by hand through the recorder (``--unsynced``: main writes
again before it waits for the result, a race), so that the happens-before edges of the pool
are tested whether or not shared accesses are recorded by a rewrite."""
import sys
from concurrent.futures import ThreadPoolExecutor

from tracer.program import _names, _seam

x = 0


def access(op, value):
    rec = _seam.REC
    rec.emit(rec.current(), op, "x", None, None, _names.user_site(3),
             {"value": value})


def task():
    access("read", x)
    return x + 1


unsynced = "--unsynced" in sys.argv
access("write", 1)
x = 1
with ThreadPoolExecutor(max_workers=2) as pool:
    fut = pool.submit(task)
    if unsynced:
        access("write", 2)
    y = fut.result()
    access("write", y)
    x = y
print("x =", x)
