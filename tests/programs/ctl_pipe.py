"""A thread blocks reading an OS pipe (tracer does not see it); another thread writes it after
a recorded operation: no schedule may hang on the read."""
import os
import threading

r, w = os.pipe()
lock = threading.Lock()
got = []


def reader():
    with lock:
        pass
    got.append(os.read(r, 5))
    with lock:
        pass


def writer():
    with lock:
        pass
    os.write(w, b"hello")


t1 = threading.Thread(target=reader, name="reader")
t2 = threading.Thread(target=writer, name="writer")
t1.start()
t2.start()
t1.join()
t2.join()
assert got == [b"hello"], got
