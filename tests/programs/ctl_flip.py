"""Which lock a thread takes first depends on the environment: a replay under another
environment leaves the recorded order."""
import os
import threading

lock_a = threading.Lock()
lock_b = threading.Lock()
first, second = (lock_b, lock_a) if os.environ.get("FLIP") else (lock_a, lock_b)


def work():
    with first:
        pass
    with second:
        pass


t = threading.Thread(target=work, name="worker")
t.start()
t.join()
