import threading

never = threading.Event()


def waiter():
    never.wait()


t = threading.Thread(target=waiter, name="waiter")
t.start()
t.join()
