import threading


def boom():
    raise ValueError("the balance went below zero")


t = threading.Thread(target=boom, name="worker")
t.start()
t.join()
raise KeyError("missing")
