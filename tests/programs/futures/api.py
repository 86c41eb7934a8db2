"""The pool's API: result(), as_completed, wait, map, exception(), and a pool nobody shuts
down (the interpreter's exit lets its workers go)."""
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed, wait

lock = threading.Lock()


def work(x):
    with lock:
        return x * 2


with ThreadPoolExecutor(max_workers=2) as pool:
    fut = pool.submit(work, 1)
    print(fut.result())
    futures = [pool.submit(work, i) for i in range(3)]
    print(sorted(f.result() for f in as_completed(futures)))
    done, _ = wait([pool.submit(work, 5)])
    print([f.result() for f in done])
    print(list(pool.map(work, [7, 8])))

unclosed = ThreadPoolExecutor()
later = unclosed.submit(work, 9)
print(later.exception())
