"""A Manager's queue, namespace, value, event and condition used by a parent and a child
(``python mp_mgr_kinds.py METHOD``)."""
import multiprocessing as mp
import sys


def child(jobs, ns, box, started, cond):
    started.set()
    item = jobs.get()
    with cond:
        ns.total = ns.total + item
        box.value = box.value + 1
        cond.notify_all()


if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    with mp.Manager() as manager:
        jobs = manager.Queue()
        ns = manager.Namespace()
        ns.total = 0
        box = manager.Value("i", 0)
        started = manager.Event()
        cond = manager.Condition()
        p = mp.Process(target=child, args=(jobs, ns, box, started, cond))
        p.start()
        started.wait()
        jobs.put(5)
        with cond:
            while box.value == 0:
                cond.wait()
        p.join()
        print("total", ns.total, "box", box.value)
