# Each kind of value a shared variable may hold, falsy ones too, written then read, by an
# attribute and by a global: every read in the trace shows what the last write wrote.
class Box:
    def __init__(self):
        self.v = None


VALUES = [0, 0.0, "", False, None, True, 7, -2.5, "text", [1, 2], {"k": 1}, (3,), 10**30,
          "\udc80"]
box = Box()
g = None


def main():
    global g
    for x in VALUES:
        box.v = x
        y = box.v
        g = x
        z = g
        assert y is x and z is x


main()
