"""f-strings, decorators, lambdas, match, exceptions, globals() shadowed."""

# ruff: noqa: E731  (tricky constructs on purpose)

import functools


class Config:
    def __init__(self):
        self.width = 8
        self.name = "cfg"


cfg = Config()
table = {"a": 1, "b": 2}


def deco(tag):
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            return f"{tag}:{fn(*args, **kwargs)}"

        return inner

    return wrap


@deco(cfg.name)
def hello(who):
    return f"hello {who!r:>{cfg.width}} {table['a']:03d} {cfg.name=}"


scale = lambda v, k=cfg.width: v * k + table["b"]


def classify(point):
    match point:
        case {"x": 0, "y": y}:
            return f"on y at {y}"
        case (a, b) if a == cfg.width:
            return f"pair {b}"
        case Config(width=w):
            return f"config {w}"
        case _:
            return "other"


def raises():
    return cfg.missing


try:
    raises()
except AttributeError as e:
    print("AttributeError", e)
try:
    table["zzz"]
except KeyError as e:
    print("KeyError", e)

print(hello("you"), hello.__name__, scale(2))
print(classify({"x": 0, "y": 5}), classify((8, 1)), classify(cfg), classify(3))
globals = dict  # shadows the builtin; the rewrite must not care
print(globals(a=1), cfg.width)
