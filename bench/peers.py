"""Side by side with the tools users would pick instead: VizTracer, threadle and frontrun.

Installs the peers (pinned below) into their own venv, ``.venv-peers`` (git-ignored; the
project's ``.venv`` is never touched), then measures, in one run and on the same work, every
command as a user runs it (``env time -f "%e %M"``: the whole command's wall seconds):

(1) the cost of one acquire + release pair: one thread runs ``lock.acquire(); lock.release()``
    N times (explicit calls: threadle's ``TrackedLock`` has no ``with``, and VizTracer does
    not see a ``with`` block's ``__enter__``/``__exit__``). Each row's command runs at two
    op counts; the difference of the medians of the wall times, divided by the difference of
    the op counts, is the cost per pair: start-up, imports, writing and analyzing a trace at
    the end cancel out, except for the part of them that grows with the ops (a trace's size).
    Rows: a bare ``threading.Lock``; the same under ``viztracer PROG.py`` (and with ``with
    lock:`` instead, of which VizTracer records only the ``__exit__`` call); threadle's
    ``TrackedLock`` (tracker only, and inside ``Session(trace_timeline=True)``); frontrun's
    ``CooperativeLock`` outside a schedule, and the plain lock inside one schedule of
    ``frontrun.explore`` (random and DPOR: what frontrun costs each operation of the code it
    explores), run under ``frontrun python`` as its docs ask; tracer: a scenario of the pairs
    through ``tracer run``, and the unchanged program through ``tracer run PROG.py``.
(2) exploring: schedules per second of frontrun's random and DPOR explorers against
    ``tracer explore``, on the bank race (``examples/bank.py``: two withdrawals check the
    balance, sleep, then withdraw; frontrun's invariant and the program's final ``assert``
    are ``money >= 0``; tracer's scenario is ``scenarios/bank_account_race.yaml``), on the
    rare ABBA (``bench/explore.py``'s: the second thread sleeps 0.5 s, then takes the locks
    in the opposite order) and on the five dining philosophers
    (``scenarios/dining_philosophers.yaml``). Rates are (schedules at the larger count -
    schedules at the smaller) / (difference of the median wall times). frontrun stops at the
    first deadlock it meets (whatever ``stop_on_first`` says), and DPOR stops when it has
    covered every schedule: where a count cannot be raised, the row says so and gives the
    schedules it ran and its whole command's time. Every frontrun invariant here records a
    violation and returns True, so the explorer runs all its schedules (a violated one would
    end the search); "first hit" is the first schedule that violated it (1-based).

Medians of ``--runs`` rounds (this machine is shared and noisy); each round runs every row.

    make bench-peers                 # or: .venv/bin/python bench/peers.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / ".venv-peers"
# the versions measured (the newest on PyPI on 2026-12-02)
PINS = ("viztracer==1.1.1", "threadle==0.1.0", "frontrun==0.7.0")
TRACER = Path(sys.executable).parent / "tracer"

# --- the work -----------------------------------------------------------------------------

LOCKS = """\
import sys, threading
n = int(sys.argv[1])


def work(lock, n):
    for _ in range(n):
        lock.acquire()
        lock.release()


t = threading.Thread(target=work, args=(threading.Lock(), n))
t.start()
t.join()
"""

# the same with ``with lock:``: VizTracer records one event per pair there, the __exit__
# (on 3.11 ``with`` calls __enter__ without a C-call event, __exit__ with one)
LOCKS_WITH = LOCKS.replace("        lock.acquire()\n        lock.release()\n",
                           "        with lock:\n            pass\n")

THREADLE_LOCKS = """\
import sys, threading
import threadle as tl
n, timeline = int(sys.argv[1]), sys.argv[2] == "timeline"


def work(lock, n):
    for _ in range(n):
        lock.acquire()
        lock.release()


with tl.Session(trace_timeline=timeline):
    t = threading.Thread(target=work, args=(tl.TrackedLock("L"), n))
    t.start()
    t.join()
    report = tl.analyze_deadlocks()
print(report.summary)
"""

FRONTRUN_COOPERATIVE_LOCKS = """\
import sys, threading
from frontrun._cooperative import CooperativeLock
n = int(sys.argv[1])


def work(lock, n):
    for _ in range(n):
        lock.acquire()
        lock.release()


t = threading.Thread(target=work, args=(CooperativeLock(), n))
t.start()
t.join()
"""

FRONTRUN_LOCKS = """\
import json, sys, threading
import frontrun
n, strategy = int(sys.argv[1]), sys.argv[2]


class State:
    def __init__(self):
        self.lock = threading.Lock()


def work(s):
    lock = s.lock
    for _ in range(n):
        lock.acquire()
        lock.release()


# one schedule; random's max_ops large enough that its scheduler controls the whole run
kw = dict(max_attempts=1, max_ops=100 * n) if strategy == "random" else dict(max_executions=1)
r = frontrun.explore(setup=State, workers=[work], invariant=lambda s: True, strategy=strategy,
                     **kw)
print(json.dumps({"explored": r.num_explored, "holds": r.property_holds}))
"""

# frontrun's side of the exploration: one program, the case and the strategy from argv
FRONTRUN_EXPLORE = """\
import json, sys, threading, time
import frontrun

case, strategy, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Account:  # examples/bank.py's
    def __init__(self, name, money):
        self.name = name
        self.money = money


def drawing(amount):
    def run(account):  # examples/bank.py's Drawing.run
        if account.money < amount:
            return
        time.sleep(1)
        account.money -= amount
    return run


class Forks:
    def __init__(self, n):
        self.forks = [threading.Lock() for _ in range(n)]


def abba_first(s):
    with s.forks[0]:
        with s.forks[1]:
            pass


def abba_second(s):
    time.sleep(0.5)
    with s.forks[1]:
        with s.forks[0]:
            pass


def philosopher(i, n):
    def run(s):
        with s.forks[i]:
            time.sleep(0.1)
            with s.forks[(i + 1) % n]:
                time.sleep(0.05)
    return run


schedules, bad = [0], []


def counted(make):
    def setup():
        schedules[0] += 1
        return make()
    return setup


def holds(state):  # records a violation, lets the search go on
    if isinstance(state, Account) and state.money < 0 and not bad:
        bad.append(schedules[0])
    return True


if case == "bank":
    setup, workers = counted(lambda: Account("Jack", 100)), [drawing(80), drawing(100)]
elif case == "abba":
    setup, workers = counted(lambda: Forks(2)), [abba_first, abba_second]
else:
    setup, workers = counted(lambda: Forks(5)), [philosopher(i, 5) for i in range(5)]
if strategy == "random":
    kw = dict(max_attempts=n, seed=1)
else:  # "dpor", or "dpor-unbounded": preemption_bound=None (the default bound is 2)
    kw = dict(max_executions=n, stop_on_first=False)
    if strategy == "dpor-unbounded":
        strategy, kw["preemption_bound"] = "dpor", None
t = time.perf_counter()
r = frontrun.explore(setup=setup, workers=workers, invariant=holds, strategy=strategy,
                     reproduce_on_failure=0, **kw)
seconds = time.perf_counter() - t
deadlock = "Deadlock" in (r.explanation or "")
print(json.dumps({"explored": r.num_explored, "first_bug": bad[0] if bad else None,
                  "deadlock": deadlock, "first_deadlock": r.num_explored if deadlock else None,
                  "seconds": seconds}))
"""

ABBA = """\
name: rare-abba
description: The second actor sleeps 0.5 s before taking the locks in the opposite order.
primitives: {A: lock, B: lock}
actors:
  - {name: first, kind: thread, steps: [{acquire: A}, {acquire: B}, {release: B}, {release: A}]}
  - name: second
    kind: thread
    steps: [{sleep: 0.5}, {acquire: B}, {acquire: A}, {release: A}, {release: B}]
"""


def lock_scenario(n: int) -> str:
    """One thread actor taking and releasing one lock n times."""
    return f"""\
name: lock-pairs
max_events: 100000000
timeout: 1800
primitives: {{L: lock}}
actors:
  - name: a
    kind: thread
    steps:
      - repeat: {n}
        steps: [{{acquire: L}}, {{release: L}}]
"""


def bank_program() -> str:
    """examples/bank.py, joined, with the overdraft as a final ``assert`` (the bug to find)."""
    text = (ROOT / "examples" / "bank.py").read_text(encoding="utf-8")
    tail = "    draw2.start()\n"
    if tail not in text:
        sys.exit(f"examples/bank.py changed: no {tail.strip()!r} line to join after")
    return text.replace(tail, tail + "    draw1.join()\n    draw2.join()\n"
                        "    assert a1.money >= 0, a1.money\n")


# --- measuring ----------------------------------------------------------------------------

@dataclass
class Timed:
    """One command's run: wall seconds and peak RSS (KB) from GNU time, and its stdout."""
    wall: float
    rss_kb: int
    stdout: str


def parse_time(stderr: str) -> tuple[float, int]:
    """The last ``TIME <wall> <maxrss>`` line that ``env time -f "TIME %e %M"`` wrote."""
    found = re.findall(r"^TIME (\d+(?:\.\d+)?) (\d+)$", stderr, re.M)
    if not found:
        raise ValueError("no 'TIME wall rss' line from GNU time in the command's stderr")
    wall, rss = found[-1]
    return float(wall), int(rss)


def last_json(stdout: str) -> dict[str, object]:
    """The last line of stdout that is a JSON object (the frontrun programs' report)."""
    for raw in reversed(stdout.splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    raise ValueError("no JSON report line in the command's output")


def timed(cmd: Sequence[str], cwd: Path, ok: Sequence[int] = (0,),
          env: dict[str, str] | None = None) -> Timed:
    proc = subprocess.run(["env", "time", "-f", "TIME %e %M", *cmd], cwd=cwd, text=True,
                          capture_output=True, timeout=1800, check=False, env=env)
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                 f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    wall, rss = parse_time(proc.stderr)
    return Timed(wall, rss, proc.stdout)


def slope(small: Sequence[float], large: Sequence[float], n_small: float,
          n_large: float) -> float:
    """(median(large) - median(small)) / (n_large - n_small): seconds per unit of work, with
    what does not grow with the work (start-up, imports) cancelled."""
    if n_large <= n_small:
        raise ValueError("the larger count must be larger")
    return (statistics.median(large) - statistics.median(small)) / (n_large - n_small)


@dataclass
class CostRow:
    """A command run at two op counts (pairs); ``cost`` is seconds per pair."""
    label: str
    command: Callable[[int], list[str]]
    counts: tuple[int, int]
    ok: tuple[int, ...] = (0,)
    env: dict[str, str] | None = None
    walls: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))

    def cost(self) -> float:
        return slope(self.walls[0], self.walls[1], *self.counts)


def cost_table(rows: Sequence[CostRow], bare_label: str) -> list[list[str]]:
    """[what, µs per pair, times bare, pairs, median walls] per row."""
    bare = next(r.cost() for r in rows if r.label == bare_label)
    out = []
    for r in rows:
        c = r.cost()
        out.append([r.label, f"{c * 1e6:.2f}", f"{c / bare:.0f}x" if bare > 0 else "-",
                    f"{r.counts[0]:,} / {r.counts[1]:,}",
                    f"{statistics.median(r.walls[0]):.2f} / {statistics.median(r.walls[1]):.2f}"])
    return out


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (pipes), its columns padded to line up in a terminal too."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows)])


# --- the peers' venv ----------------------------------------------------------------------

def peers_python() -> Path:
    """The peers' venv's python, created and filled with PINS when missing or stale."""
    py = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / "pins.txt"
    wanted = "\n".join(PINS) + "\n"
    if py.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == wanted:
        return py
    base = Path(getattr(sys, "_base_executable", sys.executable))
    print(f"installing {', '.join(PINS)} into {PEERS_VENV.name} ...", flush=True)
    subprocess.run([str(base), "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *PINS], check=True)
    stamp.write_text(wanted, encoding="utf-8")
    return py


# --- the bench ----------------------------------------------------------------------------

def cost_rows(tmp: Path, py: Path, quick: bool) -> list[CostRow]:
    bin_ = py.parent
    for name, text in (("locks.py", LOCKS), ("locks_with.py", LOCKS_WITH),
                       ("threadle_locks.py", THREADLE_LOCKS),
                       ("coop_locks.py", FRONTRUN_COOPERATIVE_LOCKS),
                       ("frontrun_locks.py", FRONTRUN_LOCKS)):
        (tmp / name).write_text(text, encoding="utf-8")
    k = 10 if quick else 1

    def scenario(n: int) -> list[str]:
        path = tmp / f"pairs-{n}.yaml"
        path.write_text(lock_scenario(n), encoding="utf-8")
        return [str(TRACER), "run", str(path), "-o", str(tmp / "scenario.json")]

    fr = [str(bin_ / "frontrun"), str(py)]
    return [
        CostRow("bare threading.Lock", lambda n: [str(py), "locks.py", str(n)],
                (1_000_000 // k, 3_000_000 // k)),
        CostRow("viztracer PROG.py", lambda n: [
            str(bin_ / "viztracer"), "--quiet", "-o", str(tmp / "viz.json"), "locks.py", str(n)],
            (100_000 // k, 300_000 // k)),
        CostRow("viztracer PROG.py, `with lock:` (records __exit__ only)", lambda n: [
            str(bin_ / "viztracer"), "--quiet", "-o", str(tmp / "viz.json"), "locks_with.py",
            str(n)], (100_000 // k, 300_000 // k)),
        CostRow("threadle TrackedLock", lambda n: [str(py), "threadle_locks.py", str(n), "plain"],
                (50_000 // k, 150_000 // k)),
        CostRow("threadle TrackedLock + Session(trace_timeline)",
                lambda n: [str(py), "threadle_locks.py", str(n), "timeline"],
                (50_000 // k, 150_000 // k)),
        CostRow("frontrun CooperativeLock, no schedule",
                lambda n: [*fr, "coop_locks.py", str(n)], (100_000 // k, 300_000 // k)),
        CostRow("frontrun.explore, 1 schedule, random",
                lambda n: [*fr, "frontrun_locks.py", str(n), "random"], (2_000 // k, 6_000 // k)),
        CostRow("frontrun.explore, 1 schedule, DPOR",
                lambda n: [*fr, "frontrun_locks.py", str(n), "dpor"], (2_000 // k, 6_000 // k)),
        CostRow("tracer run SCENARIO.yaml", scenario, (100_000 // k, 300_000 // k)),
        CostRow("tracer run PROG.py", lambda n: [
            str(TRACER), "run", "locks.py", "-o", str(tmp / "prog.json"), "--timeout", "1800",
            "--max-events", "100000000", "--", str(n)], (100_000 // k, 300_000 // k)),
    ]


@dataclass
class ExploreRow:
    """One explorer on one case: its runs at each schedule count."""
    case: str
    tool: str
    command: Callable[[int], list[str]]
    counts: tuple[int, ...]
    ok: tuple[int, ...]
    report: Callable[[Timed], dict[str, object]]
    done: list[list[tuple[Timed, dict[str, object]]]] = field(default_factory=list)


def tracer_report(t: Timed) -> dict[str, object]:
    """The schedules, and the first hit of each kind (1-based), of ``tracer explore
    --format json``."""
    try:
        d = json.loads(t.stdout)
    except json.JSONDecodeError:
        d = last_json(t.stdout)
    first: dict[str, int] = {}
    for f in d.get("findings", []):
        kind, run = str(f["kind"]), int(f["first_run"]) + 1
        first[kind] = min(first.get(kind, run), run)
    return {"explored": d["runs"], "first": first}


def frontrun_report(t: Timed) -> dict[str, object]:
    d = last_json(t.stdout)
    first: dict[str, int] = {}
    if d.get("first_bug") is not None:
        first["invariant"] = int(d["first_bug"])  # type: ignore[call-overload]
    if d.get("deadlock"):
        first["deadlock"] = int(d["first_deadlock"])  # type: ignore[call-overload]
    return {"explored": d["explored"], "first": first, "seconds": d["seconds"]}


def explore_rows(tmp: Path, py: Path, quick: bool) -> list[ExploreRow]:
    (tmp / "frontrun_explore.py").write_text(FRONTRUN_EXPLORE, encoding="utf-8")
    (tmp / "bank.py").write_text(bank_program(), encoding="utf-8")
    (tmp / "abba.yaml").write_text(ABBA, encoding="utf-8")
    fr = [str(py.parent / "frontrun"), str(py), "frontrun_explore.py"]
    # schedule counts far enough apart that the difference is well above the noise
    k = 10 if quick else 1
    small, large = 100 // k, 300 // k
    fast = (200 // k, 1000 // k)  # frontrun random on the bank race
    scenario_counts = (200 // k, 2000 // k)  # tracer explore SCENARIO.yaml
    program_counts = (30 // min(k, 3), 100 // min(k, 3))  # tracer explore PROG.py

    def tracer(target: str) -> Callable[[int], list[str]]:
        return lambda n: [str(TRACER), "explore", target, "--runs", str(n), "--format", "json",
                          "--traces", str(tmp / "found")]

    def frontrun(case: str, strategy: str) -> Callable[[int], list[str]]:
        return lambda n: [*fr, case, strategy, str(n)]

    rows = []
    cases = (("bank race", "bank", str(ROOT / "scenarios" / "bank_account_race.yaml"),
              "bank.py"),
             ("rare ABBA", "abba", "abba.yaml", None),
             ("5 philosophers", "phil", str(ROOT / "scenarios" / "dining_philosophers.yaml"),
              None))
    for label, case, scenario, program in cases:
        rows.append(ExploreRow(label, "frontrun random", frontrun(case, "random"),
                               fast if case == "bank" else (small, large), (0,),
                               frontrun_report))
        # DPOR: max_executions; on the bank race it covers every schedule below 100
        rows.append(ExploreRow(label, "frontrun DPOR", frontrun(case, "dpor"),
                               (1, large) if case == "bank" else (small, large), (0,),
                               frontrun_report))
        if case == "phil":  # the default bound does not reach the five-way cycle
            rows.append(ExploreRow(label, "frontrun DPOR, preemption_bound=None",
                                   frontrun(case, "dpor-unbounded"), (small, large), (0,),
                                   frontrun_report))
        rows.append(ExploreRow(label, "tracer explore SCENARIO.yaml", tracer(scenario),
                               scenario_counts, (0, 1), tracer_report))
        if program:
            rows.append(ExploreRow(label, "tracer explore PROG.py", tracer(program),
                                   program_counts, (0, 1), tracer_report))
    return rows


def explore_table(rows: Sequence[ExploreRow]) -> list[list[str]]:
    """[case, explorer, schedules/s, bug first hit, schedules run, median walls] per row."""
    out = []
    for r in rows:
        explored = [statistics.median(float(str(rep["explored"])) for _, rep in runs)
                    for runs in r.done]
        walls = [statistics.median(t.wall for t, _ in runs) for runs in r.done]
        firsts: dict[str, list[int]] = {}
        for runs in r.done:
            for _, rep in runs:
                for kind, at in rep["first"].items():  # type: ignore[attr-defined]
                    firsts.setdefault(kind, []).append(at)
        wanted = "invariant" if r.case == "bank race" else "deadlock"
        if r.case == "bank race" and "invariant" not in firsts and "error" in firsts:
            wanted = "error"  # the program's final assert
        hits = firsts.get(wanted)
        hit = f"{wanted} at {statistics.median(hits):.0f}" if hits else "not found"
        if explored[-1] > explored[0] and walls[-1] > walls[0]:
            rate = f"{(explored[-1] - explored[0]) / (walls[-1] - walls[0]):,.0f}"
        else:  # stopped at the first deadlock, or covered every schedule
            seconds = [float(str(rep["seconds"])) for runs in r.done for _, rep in runs
                       if "seconds" in rep]
            rate = (f"stops: {explored[-1]:.0f} in {statistics.median(seconds):.3f} s "
                    "in-process" if seconds else "-")
        out.append([r.case, r.tool, rate, hit,
                    " / ".join(f"{e:.0f}" for e in explored),
                    " / ".join(f"{w:.2f}" for w in walls)])
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="rounds (medians over them)")
    ap.add_argument("--quick", action="store_true", help="a tenth of the work: a smoke run")
    ap.add_argument("--only", choices=("cost", "explore"), help="one half of the bench")
    args = ap.parse_args(argv)
    if not TRACER.exists():
        sys.exit(f"no {TRACER}: run this with the project's venv (make bench-peers)")
    py = peers_python()
    versions = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True,
                              check=True).stdout.split()
    print("peers:", ", ".join(v for v in versions if v.split("==")[0] in
                               {p.split("==")[0] for p in PINS}), flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(os.path.realpath(d))
        costs = [] if args.only == "explore" else cost_rows(tmp, py, args.quick)
        explores = [] if args.only == "cost" else explore_rows(tmp, py, args.quick)
        for e in explores:
            e.done = [[] for _ in e.counts]
        for i in range(args.runs):
            print(f"round {i + 1}/{args.runs}", flush=True)
            for c in costs:
                for j, n in enumerate(c.counts):
                    c.walls[j].append(timed(c.command(n), tmp, c.ok, c.env).wall)
            for e in explores:
                for j, n in enumerate(e.counts):
                    t = timed(e.command(n), tmp, e.ok)
                    e.done[j].append((t, e.report(t)))
        if costs:
            print(f"\nCost of one acquire + release pair (whole command at two pair counts; "
                  f"median of {args.runs})")
            print(format_table(["what", "µs per pair", "× bare", "pairs", "wall s"],
                               cost_table(costs, "bare threading.Lock")))
        if explores:
            print(f"\nExploring (whole command at two schedule counts; median of {args.runs})")
            print(format_table(["case", "explorer", "schedules/s", "bug first hit (schedule)",
                                "schedules", "wall s"], explore_table(explores)))


if __name__ == "__main__":
    main()
