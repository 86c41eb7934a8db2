import threading

cond = threading.Condition()
ready = False


def setter():
    global ready
    with cond:
        ready = True
        cond.notify_all()


def waiter():
    with cond:
        while not ready:
            cond.wait()


ts = [threading.Thread(target=waiter), threading.Thread(target=setter)]
for t in ts:
    t.start()
for t in ts:
    t.join()
