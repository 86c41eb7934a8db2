"""Attributes of classes: mangling, properties, slots, super(), descriptors, dataclasses."""

# ruff: noqa: B009  (tricky constructs on purpose)

from collections import namedtuple
from dataclasses import dataclass, field


class Base:
    kind = "base"

    def __init__(self):
        self.__private = 1
        self.value = 10

    def describe(self):
        return f"{self.kind}:{self.value}:{self.__private}"


class Child(Base):
    kind = "child"

    def __init__(self):
        super().__init__()
        self.__private = 2
        self._Child__other = 3

    def describe(self):
        return super().describe() + f"/{self.__private}/{self.__other}"


class WithProperty:
    def __init__(self):
        self._x = 0
        self.reads = 0

    @property
    def x(self):
        self.reads += 1
        return self._x

    @x.setter
    def x(self, v):
        self._x = v * 2


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1


class Descriptor:
    def __get__(self, obj, owner=None):
        return 42 if obj is not None else self

    def __set__(self, obj, value):
        obj.__dict__["stored"] = value


class UsesDescriptor:
    d = Descriptor()


class Dynamic:
    def __getattr__(self, name):
        return name.upper()


@dataclass
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)


Pair = namedtuple("Pair", "left right")

c = Child()
print(c.describe(), c.kind, Child.kind)
p = WithProperty()
p.x = 5
p.x += 1
print(p.x, p.reads, p._x)
s = Slotted()
s.b = 2
s.a += 5
try:
    print(s.c)
except AttributeError as e:
    print("AttributeError", e)
try:
    s.b2 = 1
except AttributeError as e:
    print("AttributeError", type(e).__name__)
u = UsesDescriptor()
u.d = 7
print(u.d, u.stored, UsesDescriptor.d.__class__.__name__)
print(Dynamic().anything)
pt = Point(1)
pt.x += 2
pt.tags.append("t")
print(pt, pt == Point(3, 0, ["t"]))
pair = Pair(1, 2)
print(pair.left + pair.right)
try:
    pair.left = 3
except AttributeError as e:
    print("AttributeError", type(e).__name__)
method = c.describe
print(method())
print(getattr(c, "_Base__private"), c._Child__private)
