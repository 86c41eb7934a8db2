"""A process pool: its futures are not recorded, and submit/result/map work as they do bare."""
from concurrent.futures import ProcessPoolExecutor


def square(x):
    return x * x


if __name__ == "__main__":
    with ProcessPoolExecutor(max_workers=2) as pool:
        fut = pool.submit(square, 7)
        print(fut.result())
        print(list(pool.map(square, range(4))))
