"""The same lock taken with `with` and by hand, and a with-block that raises inside."""
import threading

lock = threading.Lock()
with lock:
    pass
lock.acquire()
lock.release()
try:
    with lock:
        raise ValueError("inside")
except ValueError:
    pass
print("locked after:", lock.locked())
