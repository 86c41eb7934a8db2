"""Name resolution: globals, global, nonlocal, closures, comprehensions, class bodies."""

# ruff: noqa: B007, F821, RET504, RUF012  (tricky constructs on purpose)

counter = 0
total = 10
shadow = "global"
items = [1, 2, 3]


def bump(n):
    global counter
    counter += n
    return counter


def reads_global():
    return total + counter


def local_shadow():
    total = 5  # a local: the global is untouched
    return total


def params(total, counter=counter):
    return total * counter


def closure():
    shadow = "enclosing"

    def inner():
        return shadow

    def inner_nonlocal():
        nonlocal shadow
        shadow = shadow + "!"
        return shadow

    return inner(), inner_nonlocal(), inner()


def nested_global():
    def inner():
        global total
        total = total + 1
        return total

    return inner()


def comprehension():
    k = 2
    squares = [i * k + total for i in items]
    evens = {i: i % 2 == 0 for i in items if i > counter - 10}
    gen = sum(x for x in items)
    return squares, evens, gen


class Body:
    shadow = "class"
    seen = shadow  # the class's own binding
    outer = total  # the module's
    listed = [shadow for _ in range(2)]  # a comprehension in a class body sees the module's

    def method(self):
        return shadow  # the module's, not the class attribute


def walrus():
    if (n := len(items)) > 2:
        return n
    return 0


if (w := 3) > 2:
    found = [y for x in items if (y := x * w) > 3]

try:
    print(not_defined)
except NameError as e:
    print("NameError", e)

len_before = len(items)
print(bump(2), bump(3), reads_global(), local_shadow(), params(4), closure(), nested_global())
print(comprehension(), Body.seen, Body.outer, Body.listed, Body().method(), walrus())
print(w, y, found, len_before)
del shadow
try:
    print(shadow)
except NameError as e:
    print("NameError", e)
for total in range(3):
    pass
print(total, counter)
