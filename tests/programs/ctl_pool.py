"""The main thread waits in Future.result() (nothing it records) while a pool's workers take a
recorded lock."""
import threading
from concurrent.futures import ThreadPoolExecutor

lock = threading.Lock()
total = [0]


def work(n):
    with lock:
        total[0] += n
    return n


with ThreadPoolExecutor(max_workers=2) as pool:
    futures = [pool.submit(work, i) for i in range(4)]
    results = [f.result() for f in futures]
assert results == [0, 1, 2, 3], results
assert total[0] == 6, total
