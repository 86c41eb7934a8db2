"""The tutorial's bank account, its lock removed: two threads withdraw from one account."""

import threading


class Account:
    def __init__(self, money: int) -> None:
        self.money = money


class ATM:
    def __init__(self, account: Account) -> None:
        self.account = account

    def withdraw(self, amount: int) -> None:
        if self.account.money >= amount:
            self.account.money -= amount


account = Account(100)
atms = [ATM(account) for _ in range(2)]
threads = [threading.Thread(target=atm.withdraw, args=(80,)) for atm in atms]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("left", account.money)
