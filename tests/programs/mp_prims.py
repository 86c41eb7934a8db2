"""Every multiprocessing primitive the tracer records, shared by a parent and its children,
under the start method given as the first argument (through a context)."""
import multiprocessing as mp
import sys


class Counter(mp.Process):
    def __init__(self, rlock, bsem, cond, jq, box):
        super().__init__(name="counter")
        self.rlock = rlock
        self.bsem = bsem
        self.cond = cond
        self.jq = jq
        self.box = box

    def run(self):
        with self.rlock:
            with self.rlock:
                self.box.value += 1
        with self.bsem:
            item = self.jq.get()
            self.jq.task_done()
        with self.cond:
            self.box.value += item
            self.cond.notify_all()


def square(n):
    return n * n


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1] if len(sys.argv) > 1 else "fork")
    rlock = ctx.RLock()
    bsem = ctx.BoundedSemaphore(2)
    cond = ctx.Condition()
    jq = ctx.JoinableQueue()
    box = ctx.Value("i", 0)
    done = ctx.Event()
    worker = Counter(rlock, bsem, cond, jq, box)
    worker.start()
    jq.put(41)
    with cond:
        while box.value < 42:
            cond.wait()
    jq.join()
    worker.join()
    done.set()
    done.wait()
    with ctx.Pool(2) as pool:
        squares = pool.map(square, range(4))
    with ctx.Manager() as manager:
        shared = manager.dict()
        shared["total"] = sum(squares)
        mlock = manager.Lock()
        with mlock:
            total = shared["total"]
    print("value", box.value, "squares", squares, "total", total)
