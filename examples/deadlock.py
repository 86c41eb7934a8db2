"""The deadlock the tutorial describes (死锁): each thread holds one lock and waits for the
other's. ``--n N`` makes N threads in a ring.

    tracer run examples/deadlock.py -- --n 2     # deadlock, seen live; wait-for graph
"""
import argparse
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--n", type=int, default=2)
n = parser.parse_args().n

forks = [threading.Lock() for _ in range(n)]


def philosopher(i):
    with forks[i]:
        time.sleep(0.1)  # let the others take their first lock
        with forks[(i + 1) % n]:
            print(f"philosopher {i} eats")


threads = [threading.Thread(target=philosopher, args=(i,), name=f"philosopher-{i}")
           for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
