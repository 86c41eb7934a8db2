"""The main process gets from a Manager queue nobody puts into: a stall, seen live."""
import multiprocessing as mp

if __name__ == "__main__":
    with mp.Manager() as manager:
        jobs = manager.Queue()
        jobs.get()
