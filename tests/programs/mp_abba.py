"""Two processes take two multiprocessing locks in opposite orders: a deadlock across
processes (each holds one lock and waits for the other)."""
import multiprocessing as mp
import sys


def one(a, b, ready, go):
    with a:
        ready.release()
        go.wait()
        with b:
            pass


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])
    lock_a = mp.Lock()
    lock_b = mp.Lock()
    ready = mp.Semaphore(0)
    go = mp.Event()
    p1 = mp.Process(target=one, args=(lock_a, lock_b, ready, go), name="left")
    p2 = mp.Process(target=one, args=(lock_b, lock_a, ready, go), name="right")
    p1.start()
    p2.start()
    ready.acquire()
    ready.acquire()
    go.set()
    p1.join()
    p2.join()
