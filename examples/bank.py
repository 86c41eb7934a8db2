"""The tutorial's bank account (concurrency-tutorial, 互斥锁), with its lock removed and its
``sleep(1)`` active: two withdrawals check the balance, then both take their money.

    tracer run examples/bank.py        # race on Account#1.money, and an overdraft
    tracer explore examples/bank.py    # the lost updates no single run shows
"""
from threading import Thread
from time import sleep


class Account:
    def __init__(self, name, money):
        self.name = name
        self.money = money


class Drawing(Thread):
    def __init__(self, drawingNum, account):
        super().__init__()
        self.drawingNum = drawingNum
        self.account = account
        self.expenseTotal = 0

    def run(self):
        if self.account.money < self.drawingNum:
            print("账户余额不足")
            return
        sleep(1)  # 测试冲突问题
        self.account.money -= self.drawingNum
        self.expenseTotal += self.drawingNum
        print("账户名:{},余额:{}".format(self.account.name, self.account.money))
        print("账户名:{},总共取出金额为:{}".format(self.account.name, self.expenseTotal))


if __name__ == '__main__':
    a1 = Account("Jack", 100)
    draw1 = Drawing(80, a1)
    draw2 = Drawing(100, a1)
    draw1.start()
    draw2.start()
