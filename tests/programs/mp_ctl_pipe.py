"""A child process blocks reading an OS pipe (tracer does not see it) that its parent writes
after a recorded operation; another child dies at once (os._exit) without ending its body: no
schedule may hang on the read, nor wait for the dead child."""
import multiprocessing as mp
import os


def reader(r, lock):
    with lock:
        pass
    data = os.read(r, 5)
    with lock:
        assert data == b"hello", data


def dies():
    os._exit(3)


if __name__ == "__main__":
    r, w = os.pipe()
    lock = mp.Lock()
    p = mp.Process(target=reader, args=(r, lock), name="reader")
    q = mp.Process(target=dies, name="dies")
    p.start()
    q.start()
    with lock:
        pass
    os.write(w, b"hello")
    q.join()
    p.join()
    assert p.exitcode == 0 and q.exitcode == 3, (p.exitcode, q.exitcode)
