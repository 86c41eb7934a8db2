import os
import threading

r, w = os.pipe()  # (an OS pipe, which tracer does not record: only the import orders them)


def first() -> None:
    import lazy_mod  # noqa: F401  (runs its body: CONFIG is written)
    os.write(w, b"x")


def second() -> None:
    os.read(r, 1)
    import lazy_mod
    print(lazy_mod.CONFIG["k"])


ts = [threading.Thread(target=first), threading.Thread(target=second)]
for t in ts:
    t.start()
for t in ts:
    t.join()
