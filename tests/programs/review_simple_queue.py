import queue
import threading

handed: dict[str, int] = {}
q: "queue.SimpleQueue[int]" = queue.SimpleQueue()


def produce() -> None:
    handed["a"] = 1
    q.put(1)


t = threading.Thread(target=produce)
t.start()
q.get()
print(handed["a"])
t.join()
