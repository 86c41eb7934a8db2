"""Every validation error path of the scenario loader, as tables of invalid inputs.

Each case asserts the key part of the message (``s.yaml:LINE: path: message``). A few cases
also pin the line and the path inside the file.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

import tracer
from tracer import ScenarioError, load_scenario_text

SRC = "s.yaml"


def error_of(text: str) -> str:
    """The message of the ScenarioError that loading ``text`` raises."""
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, SRC)
    return str(info.value)


def y(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def steps(*lines: str, head: str = "") -> str:
    """A scenario with one thread actor ``t`` whose steps are ``lines`` (YAML list items)."""
    body = "".join(f"      {line}\n" for line in lines)
    return f"name: s\n{head}actors:\n  - name: t\n    kind: thread\n    steps:\n{body}"


ONE_ACTOR = "actors:\n  - name: t\n    kind: thread\n    steps: []\n"


def nested(blocks: int) -> str:
    """A scenario whose step lists are ``blocks`` repeat blocks deep (flow style)."""
    inner = "[]"
    for _ in range(blocks):
        inner = "[{repeat: 1, steps: " + inner + "}]"
    return f"name: s\nactors:\n  - name: t\n    kind: thread\n    steps: {inner}\n"


# ---------------------------------------------------------------------------------------------
# The document itself

DOCUMENT_CASES = [
    pytest.param("name: s\nactors: [\n  - a: b\n",
                 "s.yaml:3: not valid YAML: expected the node content, but found '-'",
                 id="malformed-flow"),
    pytest.param("name: s\n  bad: indent\n",
                 "s.yaml:2: not valid YAML: mapping values are not allowed here",
                 id="malformed-indent"),
    pytest.param("name: s\n\tactors: []\n",
                 "s.yaml:2: not valid YAML: found character '\\t'", id="tab"),
    pytest.param('name: !!python/object/apply:os.system ["echo hi"]\n' + ONE_ACTOR,
                 "only plain YAML data is allowed (no tags that build Python objects)",
                 id="python-tag-value"),
    pytest.param('!!python/object/apply:os.system ["echo hi"]\n',
                 "s.yaml:1: could not determine a constructor for the tag "
                 "'tag:yaml.org,2002:python/object/apply:os.system'",
                 id="python-tag-document"),
    pytest.param("name: !foo bar\n" + ONE_ACTOR,
                 "could not determine a constructor for the tag '!foo'", id="custom-tag"),
    pytest.param("", "s.yaml: the file is empty; a scenario mapping with 'name' and 'actors' "
                     "is expected", id="empty"),
    pytest.param("# only a comment\n\n", "s.yaml: the file is empty", id="only-comment"),
    pytest.param("- a\n- b\n", "s.yaml:1: the document is a list, but a scenario is a mapping "
                               "with 'name', 'actors'", id="list"),
    pytest.param("hello\n", "s.yaml:1: the document is a string, but a scenario is a mapping",
                 id="string"),
]


@pytest.mark.parametrize(("text", "expected"), DOCUMENT_CASES)
def test_document_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_python_tag_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tag is refused before anything is built: os.system is never called."""
    import os

    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    error_of('x: !!python/object/apply:os.system ["echo hi"]\n' + "name: s\n" + ONE_ACTOR)
    assert calls == []


# ---------------------------------------------------------------------------------------------
# Top level and actors: keys, types, required fields

STRUCTURE_CASES = [
    pytest.param("name: s\nactrs: []\n" + ONE_ACTOR,
                 "unknown key 'actrs' — did you mean 'actors'?", id="unknown-top-key"),
    pytest.param("name: s\nprimitivs: {}\n" + ONE_ACTOR,
                 "unknown key 'primitivs' — did you mean 'primitives'?", id="unknown-top-key-2"),
    pytest.param(y("""
        name: s
        actors:
          - name: t
            kind: thread
            stpes: []
        """), "actors[0]: unknown key 'stpes' — did you mean 'steps'?", id="unknown-actor-key"),
    pytest.param("name: s\ntimeout: abc\n" + ONE_ACTOR,
                 "s.yaml:2: timeout: Input should be a valid number, got 'abc'",
                 id="timeout-not-number"),
    pytest.param("name: s\nactors:\n  - {name: t, kind: thread, count: x}\n",
                 "actors[0].count: Input should be a valid integer, got 'x'", id="count-not-int"),
    pytest.param("name: s\nactors:\n  - {name: t, kind: thread, count: 1.5}\n",
                 "actors[0].count: Input should be a valid integer, got 1.5", id="count-fraction"),
    pytest.param("name: 5\n" + ONE_ACTOR, "name: Input should be a valid string, got 5",
                 id="name-not-string"),
    pytest.param("name: ''\n" + ONE_ACTOR, "name: String should have at least 1 character",
                 id="name-empty"),
    pytest.param("name: " + "a" * 201 + "\n" + ONE_ACTOR,
                 "name: String should have at most 200 characters", id="name-too-long"),
    pytest.param(ONE_ACTOR, "s.yaml:1: 'name' is required", id="missing-name"),
    pytest.param("name: s\n", "s.yaml:1: 'actors' is required", id="missing-actors"),
    pytest.param("name: s\nactors: []\n",
                 "s.yaml:2: actors: a scenario needs at least one actor", id="empty-actors"),
    pytest.param("name: s\nactors: {t: thread}\n", "actors: Input should be a valid list",
                 id="actors-mapping"),
    pytest.param("name: s\nactors: [t]\n",
                 "actors[0]: Input should be a valid dictionary or instance of Actor, got 't'",
                 id="actor-string"),
    pytest.param("name: s\nactors:\n  - {name: t}\n", "actors[0]: 'kind' is required",
                 id="missing-kind"),
    pytest.param("name: s\nactors:\n  - {kind: thread}\n", "actors[0]: 'name' is required",
                 id="missing-actor-name"),
    pytest.param("name: s\nactors:\n  - {name: t, kind: thred}\n",
                 "actors[0].kind: Input should be 'thread', 'process' or 'coroutine', got "
                 "'thred' — did you mean 'thread'?", id="bad-kind"),
    pytest.param("name: s\nactors:\n  - {name: t, kind: thread, steps: acquire}\n",
                 "actors[0].steps: Input should be a valid list, got 'acquire'",
                 id="steps-not-list"),
    pytest.param("name: s\nprimitives: [A]\n" + ONE_ACTOR,
                 "primitives: Input should be a valid dictionary, got ['A']",
                 id="primitives-list"),
    pytest.param("name: s\nshared:\n" + ONE_ACTOR,
                 "shared: Input should be a valid dictionary, got None", id="shared-null"),
    pytest.param("name: s\ninvariants: {var: x}\n" + ONE_ACTOR,
                 "invariants: Input should be a valid list", id="invariants-not-list"),
    pytest.param("name: s\nexpect: deadlock\n" + ONE_ACTOR,
                 "expect: Input should be a valid list, got 'deadlock'", id="expect-not-list"),
    pytest.param("name: s\nexpect: [deadlok]\n" + ONE_ACTOR,
                 "expect[0]: Input should be 'deadlock', 'stall', 'potential_deadlock', 'race', "
                 "'invariant', 'misuse', 'error' or 'timeout', got 'deadlok' — did you mean "
                 "'deadlock'?",
                 id="expect-unknown-kind"),
    pytest.param("name: s\ntimeout: -1\n" + ONE_ACTOR,
                 "timeout: Input should be greater than 0, got -1", id="negative-run-timeout"),
    pytest.param("name: s\ntimeout: .inf\n" + ONE_ACTOR,
                 "timeout: Input should be a finite number, got inf", id="infinite-run-timeout"),
]


@pytest.mark.parametrize(("text", "expected"), STRUCTURE_CASES)
def test_structure_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


# ---------------------------------------------------------------------------------------------
# Names: duplicates, non-string YAML keys, clashes between sections

NAME_CASES = [
    pytest.param("name: s\nprimitives:\n  A: lock\n  A: event\n" + ONE_ACTOR,
                 "s.yaml:4: primitives: duplicate key 'A': names must be unique",
                 id="duplicate-primitive"),
    pytest.param("name: s\nshared:\n  x: 1\n  x: 2\n" + ONE_ACTOR,
                 "s.yaml:4: shared: duplicate key 'x': names must be unique",
                 id="duplicate-variable"),
    pytest.param("name: s\nname: t\n" + ONE_ACTOR,
                 "s.yaml:2: duplicate key 'name': names must be unique", id="duplicate-top-key"),
    pytest.param(steps("- {log: a, log: b}"),
                 "actors[0].steps[0]: duplicate key 'log'", id="duplicate-step-key"),
    pytest.param("name: s\nprimitives:\n  on: lock\n" + ONE_ACTOR,
                 "s.yaml:3: primitives.on: the name True is not a string (YAML reads unquoted "
                 "yes/no/on/off/numbers as other types): quote it", id="on-as-primitive-name"),
    pytest.param("name: s\nshared:\n  yes: 1\n" + ONE_ACTOR,
                 "s.yaml:3: shared.yes: the name True is not a string", id="yes-as-variable-name"),
    pytest.param("name: s\nshared:\n  1.5: 1\n" + ONE_ACTOR,
                 "s.yaml:3: shared.1.5: the name 1.5 is not a string",
                 id="number-as-variable-name"),
    pytest.param("name: s\nprimitives:\n  x: lock\nshared:\n  x: 1\n" + ONE_ACTOR,
                 "s.yaml:5: shared.x: 'x' is both a primitive and a shared variable; rename one",
                 id="primitive-and-variable"),
    pytest.param("name: s\nactors:\n  - {name: t, kind: thread}\n  - {name: t, kind: thread}\n",
                 "s.yaml:4: actors[1].name: actor name 't' is used twice (also at actors[0])",
                 id="duplicate-actor"),
    pytest.param(y("""
        name: s
        actors:
          - {name: w, kind: thread, count: 2}
          - {name: 'w[0]', kind: thread}
        """), "actors[1].name: actor name 'w[0]' is used twice (also at actors[0])",
                 id="count-copy-collides"),
    pytest.param(y("""
        name: s
        actors:
          - {name: w, kind: thread, count: 2}
          - {name: w, kind: thread, count: 2}
        """), "actor name 'w[1]' is used twice", id="two-counted-actors-same-name"),
    pytest.param("name: s\nactors:\n  - {name: yes, kind: thread}\n",
                 "actors[0].name: Input should be a valid string, got True", id="bool-actor-name"),
]


@pytest.mark.parametrize(("text", "expected"), NAME_CASES)
def test_name_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


# ---------------------------------------------------------------------------------------------
# Primitives: types and options

PRIMITIVE_CASES = [
    pytest.param("name: s\nprimitives:\n  A: lokc\n" + ONE_ACTOR,
                 "s.yaml:3: primitives.A: unknown primitive type 'lokc' — did you mean 'lock'? "
                 "(types: lock, rlock, semaphore, bounded_semaphore, event, condition, barrier, "
                 "queue, pipe, pool, rwlock, latch)", id="unknown-type-short"),
    pytest.param("name: s\nprimitives:\n  A: {type: evnet}\n" + ONE_ACTOR,
                 "primitives.A: unknown primitive type 'evnet' — did you mean 'event'?",
                 id="unknown-type-mapping"),
    pytest.param("name: s\nprimitives:\n  A: {value: 2}\n" + ONE_ACTOR,
                 "primitives.A: a primitive given as a mapping needs 'type'", id="no-type"),
    pytest.param("name: s\nprimitives:\n  A: {type: lock, parties: 2}\n" + ONE_ACTOR,
                 "primitives.A: option 'parties' does not apply to a lock (its options: none)",
                 id="parties-on-lock"),
    pytest.param("name: s\nprimitives:\n  S: {type: semaphore, valu: 2}\n" + ONE_ACTOR,
                 "option 'valu' does not apply to a semaphore (its options: value) — did you "
                 "mean 'value'?", id="misspelled-option"),
    pytest.param("name: s\nprimitives:\n  B: barrier\n" + ONE_ACTOR,
                 "primitives.B: 'parties' is required", id="barrier-without-parties"),
    pytest.param("name: s\nprimitives:\n  P: pool\n" + ONE_ACTOR,
                 "primitives.P: 'workers' is required", id="pool-without-workers"),
    pytest.param("name: s\nprimitives:\n  S: {type: semaphore, value: -1}\n" + ONE_ACTOR,
                 "primitives.S.value: Input should be greater than or equal to 0, got -1",
                 id="negative-semaphore"),
    pytest.param("name: s\nprimitives:\n  P: {type: pool, workers: 2, of: coroutine}\n"
                 + ONE_ACTOR, "primitives.P.of: Input should be 'thread' or 'process'",
                 id="pool-of-coroutine"),
    pytest.param("name: s\nprimitives:\n  E: event\n  C: {type: condition, lock: E}\n"
                 + ONE_ACTOR, "s.yaml:4: primitives.C.lock: condition lock 'E' is an event; it "
                              "must be a lock or rlock", id="condition-lock-is-event"),
    pytest.param("name: s\nprimitives:\n  L: lock\n  C: {type: condition, lock: LL}\n"
                 + ONE_ACTOR, "primitives.C.lock: condition lock 'LL' is not a primitive — "
                              "did you mean 'L'?", id="condition-lock-missing"),
    pytest.param(y("""
        name: s
        primitives:
          P: {type: pipe, between: [a, bb]}
        actors:
          - {name: a, kind: thread}
          - {name: b, kind: thread}
        """), "s.yaml:3: primitives.P.between: pipe end 'bb' is not an actor — did you "
              "mean 'b'?", id="pipe-end-not-actor"),
    pytest.param(y("""
        name: s
        primitives:
          P: {type: pipe, between: [a, a]}
        actors:
          - {name: a, kind: thread}
        """), "primitives.P.between: a pipe's two ends must be two different actors",
                 id="pipe-same-ends"),
    pytest.param("name: s\nprimitives:\n  P: {type: pipe, between: [a]}\n" + ONE_ACTOR,
                 "primitives.P.between: List should have at least 2 items", id="pipe-one-end"),
]


@pytest.mark.parametrize(("text", "expected"), PRIMITIVE_CASES)
def test_primitive_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


# ---------------------------------------------------------------------------------------------
# Steps: shape

VERB_LIST = ("acquire, release, wait, set, clear, notify, notify_all, put, get, send, recv, "
             "read, write, add, append, sleep, log, start, join, with, repeat, if, return, fail, "
             "while, let, assert, compute, count_down, count_up")
LOCK = "primitives:\n  A: lock\n"

STEP_SHAPE_CASES = [
    pytest.param(steps("- aquire: A", head=LOCK),
                 f"actors[0].steps[0]: unknown step 'aquire' — did you mean 'acquire'? "
                 f"(verbs: {VERB_LIST})", id="misspelled-verb"),
    pytest.param(steps("- {1: x}"), "actors[0].steps[0]: unknown step 1 (verbs:",
                 id="number-as-verb"),
    pytest.param(steps("- {acquire: A, release: A}", head=LOCK),
                 "actors[0].steps[0]: one verb per step, found acquire and release: split it "
                 "into separate steps", id="two-verbs"),
    pytest.param(steps("- acquire A", head=LOCK),
                 "actors[0].steps[0]: a step is a mapping with one verb, got the string "
                 "'acquire A' — write it as 'acquire: TARGET'", id="step-as-string"),
    pytest.param(steps("- hello"), "a step is a mapping with one verb, got the string 'hello'",
                 id="step-as-plain-string"),
    pytest.param(steps("- 5"), "actors[0].steps[0]: a step is a mapping with one verb, got a",
                 id="step-as-number"),
    pytest.param(steps("- {acquire: A, timout: 1}", head=LOCK),
                 "actors[0].steps[0]: unknown key 'timout' — did you mean 'timeout'?",
                 id="misspelled-step-key"),
    pytest.param(steps("- with: A", head=LOCK),
                 "actors[0].steps[0]: 'with' needs 'steps': the list of steps to run while "
                 "holding it", id="with-without-steps"),
    pytest.param(steps("- repeat: 2"), "actors[0].steps[0]: 'repeat' needs 'steps'",
                 id="repeat-without-steps"),
    pytest.param(steps("- if: {var: x, op: '<', value: 1}", head="shared: {x: 1}\n"),
                 "actors[0].steps[0]: 'if' needs 'then': the steps to run when the comparison "
                 "holds", id="if-without-then"),
    pytest.param(steps("- {if: {var: x, op: '=<', value: 1}, then: []}", head="shared: {x: 1}\n"),
                 "actors[0].steps[0].if.op: Input should be '<', '<=', '==', '!=', '>=' or '>', "
                 "got '=<'", id="if-bad-op"),
    pytest.param(steps("- {if: {var: x, op: '<', value: 2}, then: {log: a}}",
                       head="shared: {x: 1}\n"),
                 "actors[0].steps[0].then: Input should be a valid list", id="then-not-list"),
    pytest.param(steps("- {with: A, steps: log}", head=LOCK),
                 "actors[0].steps[0].steps: Input should be a valid list, got 'log'",
                 id="with-steps-not-list"),
    pytest.param(steps("- acquire:"), "actors[0].steps[0].acquire: Input should be a valid "
                                      "string, got None", id="verb-without-target"),
    pytest.param(steps("- acquire: [A]", head=LOCK),
                 "actors[0].steps[0].acquire: Input should be a valid string, got ['A']",
                 id="target-list"),
    pytest.param(steps("- write: x", head="shared: {x: 1}\n"),
                 "actors[0].steps[0].write: Input should be a valid dictionary",
                 id="write-bare-name"),
    pytest.param(steps("- add: {var: x}", head="shared: {x: 1}\n"),
                 "actors[0].steps[0].add: 'value' is required", id="add-without-value"),
    pytest.param(steps("- sleep: -1"),
                 "actors[0].steps[0].sleep: Input should be greater than or equal to 0, got -1",
                 id="negative-sleep"),
    pytest.param(steps("- sleep: 99999"),
                 "actors[0].steps[0].sleep: Input should be less than or equal to 3600",
                 id="sleep-over-limit"),
    pytest.param(steps("- {acquire: A, timeout: -1}", head=LOCK),
                 "actors[0].steps[0].timeout: Input should be greater than or equal to 0, "
                 "got -1", id="negative-timeout"),
    pytest.param(steps("- {join: t, timeout: -0.5}"),
                 "actors[0].steps[0].timeout: Input should be greater than or equal to 0",
                 id="negative-join-timeout"),
    pytest.param(steps("- {acquire: A, timeout: 1, blocking: false}", head=LOCK),
                 "actors[0].steps[0]: 'acquire' with blocking: false cannot have a timeout; "
                 "drop one of them", id="timeout-and-nonblocking-acquire"),
    pytest.param(steps("- {get: Q, timeout: 1, blocking: false}",
                       head="primitives: {Q: queue}\n"),
                 "'get' with blocking: false cannot have a timeout",
                 id="timeout-and-nonblocking-get"),
    pytest.param(steps("- {notify: C, n: 0}", head="primitives: {C: condition}\n"),
                 "actors[0].steps[0].n: Input should be greater than or equal to 1",
                 id="notify-zero"),
]


@pytest.mark.parametrize(("text", "expected"), STEP_SHAPE_CASES)
def test_step_shape_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


# ---------------------------------------------------------------------------------------------
# Limits

LIMIT_CASES = [
    pytest.param("name: s\nactors:\n  - {name: t, kind: thread, count: 100000}\n",
                 "actors[0].count: Input should be less than or equal to 10000, got 100000",
                 id="count-over-limit"),
    pytest.param("name: s\nactors:\n  - {name: t, kind: thread, count: 0}\n",
                 "actors[0].count: Input should be greater than or equal to 1", id="count-zero"),
    pytest.param(y("""
        name: s
        actors:
          - {name: t, kind: thread, count: 6000}
          - {name: u, kind: thread, count: 4001}
        """), "s.yaml:2: actors: 10001 actors after expanding 'count'; the limit is 10000",
                 id="total-actors-over-limit"),
    pytest.param(steps("- {repeat: 10000001, steps: []}"),
                 "actors[0].steps[0].repeat: Input should be less than or equal to 10000000",
                 id="repeat-over-limit"),
    pytest.param(steps("- {repeat: -1, steps: []}"),
                 "actors[0].steps[0].repeat: Input should be greater than or equal to 0",
                 id="negative-repeat"),
    pytest.param(nested(17), "steps are nested more than 16 deep (the documented limit)",
                 id="nested-17"),
    pytest.param(nested(100), "steps are nested more than 16 deep", id="nested-100"),
    pytest.param("name: s\nprimitives:\n  P: {type: pool, workers: 100000}\n" + ONE_ACTOR,
                 "primitives.P.workers: Input should be less than or equal to 1024",
                 id="pool-workers-over-limit"),
]


@pytest.mark.parametrize(("text", "expected"), LIMIT_CASES)
def test_limit_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_limits_themselves_are_accepted() -> None:
    plan = load_scenario_text(y("""
        name: s
        actors:
          - {name: t, kind: thread, count: 6000}
          - name: u
            kind: thread
            count: 4000
            steps: [{repeat: 10000000, steps: []}]
        """), SRC)
    assert len(plan.actors) == 10_000
    load_scenario_text(nested(15), SRC)  # 16 levels of step lists


# ---------------------------------------------------------------------------------------------
# Targets: existence (with did-you-mean) and type

TARGET_CASES = [
    pytest.param(steps("- acquire: lock_b", head="primitives:\n  lock_a: lock\n"),
                 "actors[0].steps[0]: 'acquire: lock_b': no primitive named 'lock_b' — did you "
                 "mean 'lock_a'?", id="missing-primitive"),
    pytest.param(steps("- set: E"), "'set: E': no primitive named 'E'",
                 id="missing-primitive-no-primitives"),
    pytest.param(steps("- read: balanse", head="shared:\n  balance: 1\n"),
                 "actors[0].steps[0]: 'read': no shared variable named 'balanse' — did you mean "
                 "'balance'?", id="missing-variable"),
    pytest.param(steps("- write: {var: balanse, value: 1}", head="shared:\n  balance: 1\n"),
                 "'write': no shared variable named 'balanse' — did you mean 'balance'?",
                 id="missing-variable-write"),
    pytest.param(steps("- read: A", head=LOCK),
                 "'read': no shared variable named 'A' (it is a primitive)",
                 id="primitive-as-variable"),
    pytest.param(y("""
        name: s
        actors:
          - {name: worker, kind: thread, autostart: false}
          - name: t
            kind: thread
            steps:
              - start: workr
        """), "actors[1].steps[0]: 'start: workr': no actor named 'workr' — did you mean "
              "'worker'?", id="missing-actor-start"),
    pytest.param(y("""
        name: s
        actors:
          - {name: worker, kind: thread}
          - name: t
            kind: thread
            steps:
              - join: wroker
        """), "'join: wroker': no actor named 'wroker' — did you mean 'worker'?",
                 id="missing-actor-join"),
    pytest.param(steps("- wait: A", head=LOCK),
                 "actors[0].steps[0]: 'wait' does not apply to 'A', a lock; it works on: event, "
                 "condition, barrier", id="wait-on-lock"),
    pytest.param(steps("- put: E", head="primitives:\n  E: event\n"),
                 "'put' does not apply to 'E', an event; it works on: queue", id="put-on-event"),
    pytest.param(steps("- set: Q", head="primitives:\n  Q: queue\n"),
                 "'set' does not apply to 'Q', a queue; it works on: event", id="set-on-queue"),
    pytest.param(steps("- send: A", head=LOCK),
                 "'send' does not apply to 'A', a lock; it works on: pipe", id="send-on-lock"),
    pytest.param(steps("- with: E", "  steps: []", head="primitives:\n  E: event\n"),
                 "'with' does not apply to 'E', an event", id="with-on-event"),
    pytest.param(steps("- acquire: P", head="primitives:\n  P: {type: pool, workers: 2}\n"),
                 "'acquire' does not apply to 'P', a pool; it works on: lock, rlock, semaphore, "
                 "bounded_semaphore, condition, rwlock (a pool runs actors: give an actor "
                 "'pool: P' instead)", id="acquire-on-pool"),
    pytest.param(steps("- acquire: x", head="shared:\n  x: 1\n"),
                 "actors[0].steps[0]: 'acquire' needs a primitive (lock, rlock, semaphore, "
                 "bounded_semaphore, condition, rwlock), but 'x' is a shared variable",
                 id="variable-as-primitive"),
    pytest.param(steps("- set: t"), "'set' needs a primitive (event), but 't' is an actor",
                 id="actor-as-primitive"),
    pytest.param(steps("- add: {var: x, value: 1}", head="shared:\n  x: hello\n"),
                 "actors[0].steps[0]: 'add' needs a number, but 'x' starts as 'hello'",
                 id="add-on-string"),
    pytest.param(steps("- add: {var: x, value: 1}", head="shared:\n  x: true\n"),
                 "'add' needs a number, but 'x' starts as True", id="add-on-bool"),
    pytest.param(steps("- append: {var: x, item: 1}", head="shared:\n  x: 1\n"),
                 "actors[0].steps[0]: 'append' needs a list, but 'x' starts as 1",
                 id="append-on-number"),
    pytest.param("name: s\nshared:\n  balance: 1\ninvariants:\n  - {var: balanse, op: '>=', "
                 "value: 0}\n" + ONE_ACTOR,
                 "s.yaml:5: invariants[0].var: invariant on 'balanse': no shared variable of "
                 "that name — did you mean 'balance'?", id="invariant-unknown-variable"),
    pytest.param("name: s\nshared: {x: 1}\ninvariants:\n  - {var: x, op: '=>', value: 0}\n"
                 + ONE_ACTOR, "invariants[0].op: Input should be", id="invariant-bad-op"),
]


@pytest.mark.parametrize(("text", "expected"), TARGET_CASES)
def test_target_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


# ---------------------------------------------------------------------------------------------
# Actors: start/join, pipes, pools, coroutine sharing

ACTOR_CASES = [
    pytest.param(y("""
        name: s
        actors:
          - {name: w, kind: thread}
          - name: t
            kind: thread
            steps:
              - start: w
        """), "actors[1].steps[0]: 'start: w' needs actor 'w' to have 'autostart: false' (it "
              "starts by itself)", id="start-autostarted"),
    pytest.param(y("""
        name: s
        actors:
          - {name: w, kind: thread, count: 2}
          - name: t
            kind: thread
            steps:
              - start: w
        """), "'start: w' needs actor 'w[0]' to have 'autostart: false'",
                 id="start-autostarted-group"),
    pytest.param(steps("- join: t"), "actors[0].steps[0]: actor 't' cannot join itself",
                 id="join-itself"),
    pytest.param(y("""
        name: s
        actors:
          - name: t
            kind: thread
            autostart: false
            steps:
              - start: t
        """), "actors[0].steps[0]: actor 't' cannot start itself", id="start-itself"),
    pytest.param(y("""
        name: s
        primitives:
          P: {type: pipe, between: [a, b]}
        actors:
          - {name: a, kind: thread}
          - {name: b, kind: thread}
          - name: c
            kind: thread
            steps:
              - send: P
        """), "actors[2].steps[0]: actor 'c' uses pipe 'P', but the pipe is between a and b "
              "only", id="pipe-outsider"),
    pytest.param(y("""
        name: s
        primitives:
          P: {type: pipe, between: [a, b], duplex: false}
        actors:
          - {name: a, kind: thread}
          - name: b
            kind: thread
            steps:
              - send: P
        """), "actors[1].steps[0]: pipe 'P' is one-way (duplex: false) from a to b: 'b' can "
              "only recv", id="one-way-pipe-send"),
    pytest.param(y("""
        name: s
        primitives:
          P: {type: pipe, between: [a, b], duplex: false}
        actors:
          - name: a
            kind: thread
            steps:
              - recv: P
          - {name: b, kind: thread}
        """), "actors[0].steps[0]: pipe 'P' is one-way (duplex: false) from a to b: 'a' can "
              "only send", id="one-way-pipe-recv"),
    pytest.param(y("""
        name: s
        primitives:
          P: {type: pool, workers: 2, of: process}
        actors:
          - {name: t, kind: thread, pool: P}
        """), "s.yaml:5: actors[0].pool: pool 'P' runs process tasks, but actor 't' is a "
              "thread", id="pool-kind-mismatch"),
    pytest.param(y("""
        name: s
        primitives:
          P: {type: pool, workers: 2}
        actors:
          - {name: t, kind: thread, pool: P, daemon: true}
        """), "actors[0].daemon: a pool task cannot be a daemon; the pool owns it",
                 id="daemon-pool-task"),
    pytest.param(y("""
        name: s
        primitives:
          workers: {type: pool, workers: 2}
        actors:
          - {name: t, kind: thread, pool: wrokers}
        """), "actors[0].pool: 'wrokers' is not a primitive; 'pool' names a primitive of type "
              "pool — did you mean 'workers'?", id="pool-missing"),
    pytest.param(y("""
        name: s
        primitives:
          L: lock
        actors:
          - name: c
            kind: coroutine
            steps: [{acquire: L}, {release: L}]
          - name: t
            kind: thread
            steps: [{acquire: L}, {release: L}]
        """), "s.yaml:3: primitives.L: 'L' is used by coroutine actors and by t (thread): an "
              "asyncio primitive only works inside its event loop", id="coroutine-and-thread"),
    pytest.param(y("""
        name: s
        primitives:
          L: lock
          C: {type: condition, lock: L}
        actors:
          - name: c
            kind: coroutine
            steps: [{acquire: L}, {release: L}]
          - name: t
            kind: thread
            steps: [{notify: C}]
        """), "primitives.L: 'L' is used by coroutine actors and by t (thread)",
                 id="coroutine-and-thread-via-condition-lock"),
]


@pytest.mark.parametrize(("text", "expected"), ACTOR_CASES)
def test_actor_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


# ---------------------------------------------------------------------------------------------
# Lines and paths

LINE_CASES = [
    pytest.param("name: s\nactors: [\n  - a: b\n", "s.yaml:3: not valid YAML", id="yaml-error"),
    pytest.param("name: s\nprimitives:\n  A: lock\n  B: lock\n  A: event\n" + ONE_ACTOR,
                 "s.yaml:5: primitives: duplicate key 'A'", id="duplicate-key"),
    pytest.param(y("""
        name: s
        primitives:
          A: lock
          E: event
        actors:
          - name: t
            kind: thread
            steps: []
          - name: u
            kind: thread
            steps:
              - acquire: A
              - release: A
              - put: E
        """), "s.yaml:14: actors[1].steps[2]: 'put' does not apply to 'E'", id="step-path"),
    pytest.param(y("""
        name: s
        primitives:
          A: lock
        actors:
          - name: t
            kind: thread
            steps:
              - with: A
                steps:
                  - log: x
                  - wait: A
        """), "s.yaml:11: actors[0].steps[0].steps[1]: 'wait' does not apply to 'A'",
                 id="nested-step-path"),
    pytest.param(y("""
        name: s
        shared: {x: 1}
        actors:
          - name: t
            kind: thread
            steps:
              - if: {var: x, op: '<', value: 2}
                then:
                  - log: a
                else:
                  - read: y
        """), "s.yaml:11: actors[0].steps[0].else[0]: 'read': no shared variable named 'y'",
                 id="else-path"),
    pytest.param(y("""
        name: s
        actors:
          - name: t
            kind: thread
            count: x
        """), "s.yaml:5: actors[0].count: Input should be a valid integer", id="field-line"),
]


@pytest.mark.parametrize(("text", "expected"), LINE_CASES)
def test_line_and_path(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_every_problem_is_reported_with_its_own_line() -> None:
    text = "name: s\nactors:\n" + "".join(
        f"  - {{name: t{i}, kind: thread, steps: [{{acquire: X{i}}}]}}\n" for i in range(3))
    lines = error_of(text).splitlines()
    assert lines == [f"s.yaml:{3 + i}: actors[{i}].steps[0]: 'acquire: X{i}': no primitive "
                     f"named 'X{i}'" for i in range(3)]


def test_many_problems_are_capped() -> None:
    text = "name: s\nactors:\n" + "".join(
        f"  - {{name: t{i}, kind: thread, steps: [{{acquire: X{i}}}]}}\n" for i in range(15))
    lines = error_of(text).splitlines()
    assert len(lines) == 11
    assert lines[-1] == "... and 5 more problems"


def test_source_name_is_the_given_one() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text("name: s\n", "dir/my scenario.yaml")
    assert str(info.value).startswith("dir/my scenario.yaml:1: 'actors' is required")


# ---------------------------------------------------------------------------------------------
# Positive cases

SPEC_EXAMPLE = y("""
    name: deadlock                 # required; used for default output names
    description: Two threads take two locks in opposite order (ABBA).
    timeout: 5                     # optional, seconds of wall time for `tracer run` (default 10)
    primitives:                    # name -> type, or name -> mapping with `type` and options
      A: lock
      B: {type: lock}
    shared:                        # optional shared variables and their initial values
      balance: 100
    invariants:                    # optional, checked on the final state of a run
      - {var: balance, op: ">=", value: 0}
    expect: [deadlock]             # optional: finding kinds this scenario must produce ([] = clean)
    actors:
      - name: t1
        kind: thread               # thread | process | coroutine
        steps:
          - acquire: A
          - sleep: 0.1
          - acquire: B
          - release: B
          - release: A
      - name: t2
        kind: thread
        steps:
          - acquire: B
          - sleep: 0.1
          - acquire: A
          - release: A
          - release: B
    """)


def test_spec_example_validates() -> None:
    plan = load_scenario_text(SPEC_EXAMPLE, SRC)
    sc = plan.scenario
    assert sc.name == "deadlock"
    assert sc.timeout == 5
    assert set(sc.primitives) == {"A", "B"}
    assert {p.type for p in sc.primitives.values()} == {"lock"}
    assert sc.shared == {"balance": 100}
    assert sc.expect == ["deadlock"]
    assert [a.name for a in plan.actors] == ["t1", "t2"]
    assert [len(a.steps) for a in plan.actors] == [5, 5]
    assert plan.flavour == {"A": "thread", "B": "thread"}
    assert plan.users == {"A": ("t1", "t2"), "B": ("t1", "t2")}


def test_default_timeout_and_optional_sections() -> None:
    plan = load_scenario_text("name: s\n" + ONE_ACTOR, SRC)
    assert plan.scenario.timeout == 10
    assert plan.scenario.expect is None
    assert plan.scenario.primitives == {}


def test_count_expands_into_named_copies() -> None:
    plan = load_scenario_text("name: s\nactors:\n  - {name: w, kind: thread, count: 3}\n", SRC)
    assert [a.name for a in plan.actors] == ["w[0]", "w[1]", "w[2]"]
    assert [(a.base, a.index) for a in plan.actors] == [("w", 0), ("w", 1), ("w", 2)]


def test_start_and_join_of_counted_actor_mean_all_copies() -> None:
    plan = load_scenario_text(y("""
        name: s
        actors:
          - {name: w, kind: thread, count: 3, autostart: false}
          - name: m
            kind: thread
            steps: [{start: w}, {join: w}, {join: 'w[1]'}]
        """), SRC)
    assert plan.groups["w"] == ("w[0]", "w[1]", "w[2]")
    assert plan.groups["w[1]"] == ("w[1]",)
    assert plan.groups["m"] == ("m",)


def test_unicode_names_and_bom() -> None:
    plan = load_scenario_text(y("""
        \ufeffname: 馒头
        primitives:
          馒头框: lock
        shared:
          账户: 1
        actors:
          - name: 线程
            kind: thread
            steps: [{acquire: 馒头框}, {release: 馒头框}, {add: {var: 账户, value: -1}}]
        """), SRC)
    assert plan.actors[0].name == "线程"
    assert plan.flavour == {"馒头框": "thread"}


def test_quoted_yes_is_a_fine_name() -> None:
    plan = load_scenario_text(steps("- acquire: 'on'", "- release: 'on'",
                                    head="primitives:\n  'on': lock\n"), SRC)
    assert "on" in plan.scenario.primitives


def test_coroutine_only_primitive_gets_asyncio_flavour() -> None:
    plan = load_scenario_text(y("""
        name: s
        primitives:
          L: lock
        actors:
          - {name: c, kind: coroutine, steps: [{acquire: L}, {release: L}]}
          - {name: d, kind: coroutine, steps: [{acquire: L}, {release: L}]}
        """), SRC)
    assert plan.flavour == {"L": "coroutine"}


def test_one_way_pipe_in_the_right_direction() -> None:
    plan = load_scenario_text(y("""
        name: s
        primitives:
          P: {type: pipe, between: [a, b], duplex: false}
        actors:
          - {name: a, kind: thread, steps: [{send: P}]}
          - {name: b, kind: thread, steps: [{recv: P}]}
        """), SRC)
    assert plan.users["P"] == ("a", "b")


def test_public_error_type() -> None:
    assert tracer.ScenarioError is ScenarioError
    with pytest.raises(tracer.ScenarioError):
        tracer.load_scenario_text("", SRC)


# ---------------------------------------------------------------------------------------------
# Regression tests for loader bugs found in review


def _load_outcome(text: str) -> str:
    """'ok', or the ScenarioError message; any other exception propagates."""
    try:
        load_scenario_text(text, SRC)
    except ScenarioError as exc:
        return str(exc)
    return "ok"


def test_self_referencing_alias() -> None:
    assert _load_outcome("name: s\nx: &a [*a]\n" + ONE_ACTOR) != "ok"


@pytest.mark.parametrize("text", [
    pytest.param("name: s\nx: " + "[" * 3000 + "]" * 3000 + "\n" + ONE_ACTOR, id="list-3000"),
    pytest.param(nested(300), id="steps-300"),
])
def test_deeply_nested_yaml(text: str) -> None:
    assert _load_outcome(text) != "ok"


def test_huge_integer() -> None:
    assert "timeout" in _load_outcome("name: s\ntimeout: " + "9" * 5000 + "\n" + ONE_ACTOR)


def _bomb(levels: int) -> str:
    rows = ["  l0: &l0 [a, a, a, a, a, a, a, a, a]"]
    rows += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]"
             for i in range(1, levels + 1)]
    return "name: s\nshared:\n" + "\n".join(rows) + "\n" + ONE_ACTOR


def _python_calls(text: str) -> int:
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        _load_outcome(text)
    finally:
        sys.setprofile(None)
    return count


def test_alias_bomb_work_is_not_exponential() -> None:
    # Deterministic: counts Python calls, not time. One more level of aliases adds one short
    # line to the file, so the work should grow by a little, not ninefold.
    small, big = _python_calls(_bomb(3)), _python_calls(_bomb(4))
    assert big < 2 * small


def test_counted_actor_joining_its_own_group() -> None:
    text = "name: s\nactors:\n  - name: w\n    kind: thread\n    count: 2\n" \
           "    steps:\n      - join: w\n"
    assert "cannot join itself" in _load_outcome(text)


def test_pool_naming_a_lock_suggests_itself() -> None:
    msg = error_of("name: s\nprimitives:\n  P: lock\nactors:\n"
                   "  - {name: t, kind: thread, pool: P}\n")
    assert "'P' is a lock" in msg
    assert "did you mean 'P'" not in msg


@pytest.mark.parametrize("text", [
    pytest.param("name: s\nactors:\n  - {name: t, kind: thread, timeout: 1}\n", id="actor"),
    pytest.param("name: s\nkind: thread\n" + ONE_ACTOR, id="top-level"),
    pytest.param(steps("- {acquire: A, item: 1}", head=LOCK), id="step"),
])
def test_unknown_key_suggests_itself(text: str) -> None:
    msg = error_of(text)
    assert "unknown key" in msg
    key = msg.split("unknown key '")[1].split("'")[0]
    assert f"did you mean '{key}'" not in msg


def test_unknown_key_line() -> None:
    assert error_of("name: s\nactrs: []\n" + ONE_ACTOR).startswith("s.yaml:2:")


def test_non_string_name_line() -> None:
    assert error_of("name: s\nprimitives:\n  on: lock\n" + ONE_ACTOR).startswith("s.yaml:3:")


def test_non_string_primitive_type_is_shown() -> None:
    msg = error_of("name: s\nprimitives:\n  A: 5\n" + ONE_ACTOR)
    assert "unknown primitive type" in msg
    assert "None" not in msg


def test_complex_key_message() -> None:
    msg = error_of("name: s\n? [a, b]\n: x\n" + ONE_ACTOR)
    assert "a mapping key must be a plain name" in msg
    assert "tags" not in msg


def test_second_document_message() -> None:
    msg = error_of("name: s\n" + ONE_ACTOR + "---\nname: t\n")
    assert "s.yaml:6: not valid YAML" in msg
    assert "single document" in msg


def test_sixteen_nested_blocks_are_allowed() -> None:
    assert _load_outcome(nested(16)) == "ok"


# ---------------------------------------------------------------------------------------------
# The language (locals, expressions, let / if / while / assert, write expr, as, atomic): each
# mistake has one message that says what was expected, what was found, where, and the fix

SHARED = "shared: {counter: 0}\n"
LANG_PRIMS = "primitives: {L: lock}\n"

LANGUAGE_CASES = [
    pytest.param(steps('- let: {y: "countr + 1"}', head=SHARED),
                 "s.yaml:7: actors[0].steps[0].let.y: 'countr' in 'countr + 1' is neither a "
                 "local of t nor a shared variable — did you mean 'counter'?",
                 id="unknown-name"),
    pytest.param(steps('- let: {y: "zzz + 1"}', head=SHARED),
                 "'zzz' in 'zzz + 1' is neither a local of t nor a shared variable; declare it "
                 "in the actor's 'locals' (locals: {zzz: 0}) or in 'shared' (names here: "
                 "counter, y)", id="unknown-name-fix"),
    pytest.param(steps('- while: "L"', "  steps: [{log: x}]", head=LANG_PRIMS),
                 "s.yaml:7: actors[0].steps[0].while: 'L' in 'L' is neither a local of t nor a "
                 "shared variable (it is a primitive: an expression reads shared variables and "
                 "locals)", id="primitive-in-expression"),
    pytest.param(steps('- let: {y: "counter ** 2"}', head=SHARED),
                 "s.yaml:7: actors[0].steps[0].let.y: bad expression 'counter ** 2' at column "
                 "9: '**' is not in the grammar", id="bad-operator"),
    pytest.param(steps('- if: "counter && 1"', "  then: [{log: x}]", head=SHARED),
                 "s.yaml:7: actors[0].steps[0].if: bad expression 'counter && 1' at column 9: "
                 "write 'and' for '&&'", id="bad-operator-and"),
    pytest.param(steps('- assert: "counter == (1"', head=SHARED),
                 "s.yaml:7: actors[0].steps[0].assert: bad expression 'counter == (1' at "
                 "column 12: this '(' is never closed: add its ')'", id="syntax-column"),
    pytest.param(steps("- assert: |", "    counter == 1 and", "    counter ** 2", head=SHARED),
                 "at line 2, column 9: '**' is not in the grammar", id="multiline-column"),
    pytest.param(steps('- let: {y: [1, 2]}', head=SHARED),
                 "s.yaml:7: actors[0].steps[0].let.y: an expression is a string such as "
                 "\"i + 1\" (quote it in YAML), not a list; a list or mapping value goes in the "
                 "actor's 'locals'", id="expression-not-a-string"),
    pytest.param(steps("- release: L", "  as: r", head=LANG_PRIMS),
                 "s.yaml:7: actors[0].steps[0]: 'as' stores the result of a step, and 'release' "
                 "has none: remove 'as' (the steps with a result: acquire, wait, put, get, "
                 "send, recv, join)", id="as-without-result"),
    pytest.param(steps('- while: "counter < 1"', head=SHARED),
                 "s.yaml:7: actors[0].steps[0]: 'while' needs 'steps': the list of steps to run "
                 "each time", id="while-without-steps"),
    pytest.param(steps('- let: {counter: "1"}', head=SHARED),
                 "s.yaml:7: actors[0].steps[0].let.counter: the local 'counter' of t has the "
                 "name of a shared variable: rename the local; to change the shared variable "
                 "use write: {var: counter, expr: ...}", id="let-of-a-shared-name"),
    pytest.param("name: s\nprimitives: {L: lock}\nactors:\n  - name: t\n    kind: thread\n"
                 "    locals: {L: 0}\n    steps: []\n",
                 "s.yaml:6: actors[0].locals.L: the local 'L' of t has the name of a "
                 "primitive: rename the local", id="local-named-like-a-primitive"),
    pytest.param(steps("- acquire: L", '  as: "null"', head=LANG_PRIMS),
                 "the local 'null' of t has the name of a constant: rename the local",
                 id="local-named-like-a-constant"),
    pytest.param(steps('- let: {"my-x": "1"}'),
                 "s.yaml:6: actors[0].steps[0].let.my-x: the local 'my-x' of t cannot be named "
                 "in an expression", id="local-not-an-identifier"),
    pytest.param(steps('- write: {var: counter, value: 1, expr: "2"}', head=SHARED),
                 "s.yaml:7: actors[0].steps[0].write: a write needs 'value' or 'expr' (one of "
                 "the two), got both: keep one", id="write-value-and-expr"),
    pytest.param(steps("- write: {var: counter}", head=SHARED),
                 "got neither: add 'value: V' or 'expr: \"...\"'", id="write-neither"),
    pytest.param("name: s\nshared: {counter: 0}\natomic: [countr]\n" + ONE_ACTOR,
                 "s.yaml:3: atomic[0]: 'atomic' lists 'countr', which is not a shared variable "
                 "— did you mean 'counter'?", id="atomic-unknown"),
    pytest.param("name: s\natomic: [zz]\n" + ONE_ACTOR,
                 "'atomic' lists 'zz', which is not a shared variable: declare it in 'shared', "
                 "or remove it", id="atomic-unknown-fix"),
    pytest.param(steps('- while: "counter < 1"', "  max: 0", "  steps: [{log: x}]", head=SHARED),
                 "s.yaml:8: actors[0].steps[0].max: Input should be greater than or equal to 1",
                 id="while-max-zero"),
    pytest.param(steps('- while: "counter < 1"', "  max: 10000001", "  steps: [{log: x}]",
                       head=SHARED),
                 "s.yaml:8: actors[0].steps[0].max: Input should be less than or equal to "
                 "10000000", id="while-max-too-big"),
    pytest.param(steps('- assert: "counter == 1"', "  mesage: hi", head=SHARED),
                 "did you mean 'message'?", id="assert-misspelled-message"),
]


@pytest.mark.parametrize(("text", "expected"), LANGUAGE_CASES)
def test_language_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_language_errors_exit_2_with_one_message(tmp_path: object) -> None:
    import subprocess
    from pathlib import Path

    path = Path(str(tmp_path)) / "s.yaml"
    path.write_text(steps('- let: {y: "countr + 1"}', head=SHARED), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "tracer", "validate", str(path)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "did you mean 'counter'" in r.stderr
    assert "Traceback" not in r.stderr


def test_yaml_scalars_are_expressions() -> None:
    plan = load_scenario_text(steps("- let: {i: 0, b: true, n: null}", "- while: false",
                                    "  steps: [{log: x}]"), SRC)
    step = plan.scenario.actors[0].steps[0]
    assert step.let == {"i": "0", "b": "true", "n": "null"}  # type: ignore[attr-defined]
