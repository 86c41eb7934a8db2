"""Tasks each write a slot no lock guards; main reads them all after the pool's `with` block
(its shutdown joins the workers), and waits for no future: no race. ``--no-join``: main reads
before it shuts the pool down, a race. (The accesses are written through the recorder, so the
pool's edges are tested whether or not a rewrite records shared accesses.)"""
import sys
from concurrent.futures import ThreadPoolExecutor

from tracer.program import _names, _seam

slots = [0] * 6


def access(op, target, value):
    rec = _seam.REC
    rec.emit(rec.current(), op, target, None, None, _names.user_site(3), {"value": value})


def task(i):
    access("write", f"slots[{i}]", i)
    slots[i] = i


def read_all():
    for i in range(6):
        access("read", f"slots[{i}]", slots[i])


if "--no-join" in sys.argv:
    pool = ThreadPoolExecutor(max_workers=3)
    for i in range(6):
        pool.submit(task, i)
    read_all()
    pool.shutdown()
else:
    with ThreadPoolExecutor(max_workers=3) as pool:
        for i in range(6):
            pool.submit(task, i)
    read_all()
print(slots)
