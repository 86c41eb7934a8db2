# Two threads take one lock by turns, by `with` and by acquire()/release(), many times:
# the count under the lock is exact, and no two threads ever hold the lock at once.
import threading


class Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def add(self, k):
        for i in range(k):
            if i % 2:
                with self.lock:
                    self.n += 1
            else:
                self.lock.acquire()
                self.n += 1
                self.lock.release()


c = Counter()
threads = [threading.Thread(target=c.add, args=(3000,)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("count", c.n)
