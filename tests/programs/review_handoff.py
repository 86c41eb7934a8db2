import threading

go = threading.Event()


def a():
    go.wait()


def b():
    pass


def main():
    ta = threading.Thread(target=a, name="a")
    ta.start()
    tb = threading.Thread(target=b, name="b")
    go.set()
    tb.start()
    ta.join()
    tb.join()


main()
