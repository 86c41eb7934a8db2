"""Processes (function style) sharing a multiprocessing.Lock and a Queue."""
import multiprocessing as mp
import sys


def work(lock, q, n):
    with lock:
        q.put(n * n)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])
    lock = mp.Lock()
    q = mp.Queue()
    procs = [mp.Process(target=work, args=(lock, q, i)) for i in range(2)]
    for p in procs:
        p.start()
    got = sorted(q.get() for _ in procs)
    for p in procs:
        p.join()
    print("got", got)
