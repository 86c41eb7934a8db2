"""Two processes increment a Manager dict's item: ``python mp_mgr_counter.py METHOD MODE``,
MODE ``none`` (a race on ``shared['n']``), ``mlock`` (under a manager lock) or ``lock`` (under
a multiprocessing lock)."""
import multiprocessing as mp
import sys


def bump(shared, guard):
    for _ in range(3):
        if guard is None:
            shared["n"] = shared["n"] + 1
        else:
            with guard:
                shared["n"] = shared["n"] + 1


if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    mode = sys.argv[2]
    with mp.Manager() as manager:
        shared = manager.dict()
        shared["n"] = 0
        mlock = manager.Lock()
        lock = mp.Lock()
        guard = {"none": None, "mlock": mlock, "lock": lock}[mode]
        workers = [mp.Process(target=bump, args=(shared, guard)) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        print("n =", shared["n"])
