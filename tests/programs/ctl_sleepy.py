"""The main thread sleeps 10 s while a producer puts and a consumer gets: in virtual time the
sleep takes no time, and the main thread wakes only when the workers can do nothing else."""
import queue
import threading
import time

q = queue.Queue()
done = threading.Event()


def producer():
    for i in range(3):
        q.put(i)
        time.sleep(0.5)


def consumer():
    for _ in range(3):
        q.get()
    done.set()


threads = [threading.Thread(target=producer, name="producer"),
           threading.Thread(target=consumer, name="consumer")]
for t in threads:
    t.start()
time.sleep(10)
print("all consumed" if done.is_set() else "NOT consumed")
assert done.is_set(), "the main thread woke before the workers were done"
for t in threads:
    t.join()
