"""Two processes take two multiprocessing locks in opposite orders, with nothing else to
order them: most runs end well; a schedule where each takes its first lock before the other
takes its second is a deadlock across processes (tracer explore finds it)."""
import multiprocessing as mp
import sys


def left(a, b):
    with a:
        with b:
            pass


def right(a, b):
    with b:
        with a:
            pass


if __name__ == "__main__":
    if len(sys.argv) > 1:
        mp.set_start_method(sys.argv[1])
    lock_a = mp.Lock()
    lock_b = mp.Lock()
    p1 = mp.Process(target=left, args=(lock_a, lock_b), name="left")
    p2 = mp.Process(target=right, args=(lock_a, lock_b), name="right")
    p1.start()
    p2.start()
    p1.join()
    p2.join()
