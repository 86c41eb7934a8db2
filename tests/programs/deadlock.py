"""Two threads take two locks in opposite orders; a barrier makes the deadlock certain."""
import sys
import threading

n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 2
locks = [threading.Lock() for _ in range(n)]
ready = threading.Barrier(n)


def worker(i):
    with locks[i]:
        ready.wait()
        with locks[(i + 1) % n]:
            pass


threads = [threading.Thread(target=worker, args=(i,), name=f"worker-{i}") for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
