import os
import threading

lock = threading.Lock()
with lock:
    pass
print("bye", flush=True)
os._exit(4)
