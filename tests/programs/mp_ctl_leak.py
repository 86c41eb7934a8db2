"""A child process that waits for ever (an event nobody sets) while its parent joins it: each
schedule ends as a stall with the child alive. The program writes its child's pid to the file
named by its argument, and, first, which of the pids written by earlier schedules still run
(to ``FILE.alive``): none may, a schedule's processes end with it."""
import multiprocessing as mp
import os
import sys


def still_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def child(path, never):
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    never.wait()


if __name__ == "__main__":
    path = sys.argv[1]
    if os.path.exists(path):
        with open(path) as f:
            pids = [int(x) for x in f.read().split()]
        with open(path + ".alive", "a") as f:
            f.write("".join(f"{pid}\n" for pid in pids if still_running(pid)))
    never = mp.Event()
    p = mp.Process(target=child, args=(path, never), name="waiter")
    p.start()
    p.join()
