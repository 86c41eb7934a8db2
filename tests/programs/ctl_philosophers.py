"""Five dining philosophers, each takes the fork on the left, then the one on the right."""
import threading

N = 5
forks = [threading.Lock() for _ in range(N)]


def philosopher(i):
    left, right = forks[i], forks[(i + 1) % N]
    with left:
        with right:
            pass


threads = [threading.Thread(target=philosopher, args=(i,), name=f"philosopher-{i}")
           for i in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join()
