"""Correctly synchronised: a lock, an event, a queue, a semaphore, a condition; it prints."""
import queue
import threading

lock = threading.Lock()
ready = threading.Event()
q = queue.Queue(maxsize=2)
sem = threading.Semaphore(2)
cond = threading.Condition()
done = []


def producer():
    ready.wait()
    for i in range(3):
        q.put(i)
    q.put(None)


def consumer():
    while True:
        item = q.get()
        if item is None:
            break
        with sem:
            with lock:
                done.append(item)
    with cond:
        cond.notify_all()


p = threading.Thread(target=producer, name="producer")
c = threading.Thread(target=consumer, name="consumer")
p.start()
c.start()
ready.set()
with cond:
    cond.wait_for(lambda: len(done) == 3 or not c.is_alive(), timeout=5)
p.join()
c.join()
print("done", sorted(done))
