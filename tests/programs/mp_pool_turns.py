# A Pool of two workers and three tasks that each sleep: which worker takes the third task is
# the OS's in a free run; a replay must give it to the worker the recording gave it to.
from multiprocessing import Pool
from time import sleep


def job(n):
    sleep(1)
    return n


if __name__ == "__main__":
    pool = Pool(2)
    for n in range(3):
        pool.apply_async(job, (n,))
    pool.close()
    pool.join()
