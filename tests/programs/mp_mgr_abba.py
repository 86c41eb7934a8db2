"""Two processes take two Manager locks in opposite orders (``python mp_mgr_abba.py METHOD``):
each holds one and waits for the other."""
import multiprocessing as mp
import sys


def one(a, b, ready, go):
    with a:
        ready.release()
        go.wait()
        with b:
            pass


if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    manager = mp.Manager()
    left_lock = manager.Lock()
    right_lock = manager.Lock()
    ready = manager.Semaphore(0)
    go = manager.Event()
    p1 = mp.Process(target=one, args=(left_lock, right_lock, ready, go), name="left")
    p2 = mp.Process(target=one, args=(right_lock, left_lock, ready, go), name="right")
    p1.start()
    p2.start()
    ready.acquire()
    ready.acquire()
    go.set()
    p1.join()
    p2.join()
