"""A child process that starts a process of its own (explore and replay refuse it)."""
import multiprocessing as mp


def grandchild():
    pass


def child():
    p = mp.Process(target=grandchild, name="grandchild")
    p.start()
    p.join()


if __name__ == "__main__":
    p = mp.Process(target=child, name="child")
    p.start()
    p.join()
