"""Two threads take two locks in opposite orders, with nothing to make them meet: a free run
almost never deadlocks."""
import threading

lock_a = threading.Lock()
lock_b = threading.Lock()


def one():
    with lock_a:
        with lock_b:
            pass


def two():
    with lock_b:
        with lock_a:
            pass


t1 = threading.Thread(target=one, name="one")
t2 = threading.Thread(target=two, name="two")
t1.start()
t2.start()
t1.join()
t2.join()
