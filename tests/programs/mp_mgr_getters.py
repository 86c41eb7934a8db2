# Two processes each take one item from a manager queue: which gets which is the order in
# which their gets reach the manager, not the order of their calls.
from multiprocessing import Manager, Process


def take(q):
    q.get()


if __name__ == "__main__":
    m = Manager()
    q = m.Queue()
    q.put("1")
    q.put("2")
    ps = [Process(target=take, args=(q,), name=f"g{i}") for i in (1, 2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
