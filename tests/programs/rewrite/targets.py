"""Every store position, and the order Python evaluates targets and values in."""

# ruff: noqa: B007  (tricky constructs on purpose)

log = []


def note(x, v=None):
    log.append(x if isinstance(x, (str, int, tuple)) else type(x).__name__)
    return x if v is None else v


class Box:
    def __init__(self):
        self.a = 0
        self.b = 0
        self.items = [0, 0, 0]


b1, b2 = Box(), Box()
d = {}
lst = [0] * 5

b1.a = b2.b = note("value", 7)
note(b1).a, note(b2).b = note("tuple", (1, 2))
(b1.a, [lst[0], *lst_rest]), b2.items[1] = (5, [6, 7, 8]), 9
first, *middle, b1.b = range(5)
note(d)[note("k")] = note("v")
note(d)[note("k")] += note("inc", "!")
lst[note(1)] += 10
lst[-1] = 4
lst[1:3] = [11, 12]
lst[::2] = [0, 0, 0]
b1.items[0] += 1
b1.items[:2] = [7, 7]
for b1.a in range(3):
    pass
for i, b2.items[2] in enumerate("xy"):
    pass


class CM:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        log.append(("enter", self.name))
        return self.name

    def __exit__(self, *exc):
        log.append(("exit", self.name))
        return False


with CM("one") as b1.b, CM("two") as d["with"]:
    log.append(("body", b1.b, d["with"]))
with CM("three") as (b2.a):
    pass
x: int = 3
b2.b: int = 4
d["ann"]: str = "ann"
counter = 0
counter += 1
counter *= 3
b1.a, counter = counter, b1.a
del b2.items[0]
del d["k"]
print(b1.__dict__, b2.__dict__, d, lst, lst_rest, first, middle, i, x, counter)
print(log[:6], log[6:])
