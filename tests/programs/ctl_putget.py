# A consumer waits on a queue, a producer puts one item: which returns first is the
# threads' timing, not the order of the effects (the put happens before the get ends).
import queue
import threading


def main():
    q = queue.Queue()
    c = threading.Thread(target=q.get, name="C")
    p = threading.Thread(target=q.put, args=(1,), name="P")
    c.start()
    p.start()
    c.join()
    p.join()


main()
