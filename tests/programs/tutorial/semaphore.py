# The tutorial's 信号量(Semaphore) section has prose only; this is the listing it describes:
# five threads read a file, a semaphore lets at most two read at the same time.
from threading import Thread, Semaphore
from time import sleep


def read_file(name):
    # 获取信号量: 计数器-1, 为0时等待
    with semaphore:
        print("{}开始读文件".format(name))
        sleep(1)
        print("{}读完了".format(name))
    # 释放信号量: 计数器+1


if __name__ == '__main__':
    # 同一时刻最多允许2个线程读文件
    semaphore = Semaphore(2)
    readers = [Thread(target=read_file, args=("reader{}".format(i),)) for i in range(5)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    print("主线程,end")
