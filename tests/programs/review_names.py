import threading

cond = threading.Condition(threading.Lock())
items: list[int] = []


def consume() -> None:
    with cond:
        cond.wait_for(lambda: items)


t = threading.Thread(target=consume)
t.start()
with cond:
    items.append(1)
    cond.notify()
t.join()
