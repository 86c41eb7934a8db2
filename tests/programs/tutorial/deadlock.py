# The tutorial's 死锁 section has prose only ("死锁问题很大一部分是由一个线程同时获取多个锁
# 造成的"); this is the listing it describes: two threads each hold one lock and want the
# other's. (A barrier, not a sleep, makes sure each holds its first lock before it asks for
# the second: the deadlock happens on every run.)
from threading import Thread, Lock, Barrier

lock_a = Lock()
lock_b = Lock()
both_hold_one = Barrier(2)


def transfer_ab():
    with lock_a:
        print("线程1拿到了lock_a, 等待lock_b")
        both_hold_one.wait()
        with lock_b:
            print("线程1拿到了lock_b")


def transfer_ba():
    with lock_b:
        print("线程2拿到了lock_b, 等待lock_a")
        both_hold_one.wait()
        with lock_a:
            print("线程2拿到了lock_a")


if __name__ == '__main__':
    t1 = Thread(target=transfer_ab, name="t1")
    t2 = Thread(target=transfer_ba, name="t2")
    t1.start()
    t2.start()
    t1.join()
    t2.join()
