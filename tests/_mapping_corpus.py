"""Extra scenarios for the as_mapping() fixture: every primitive type and option, every verb
with its options, given and not given (tests/test_scenario_mapping.py)."""

CORPUS: dict[str, str] = {
    "all_types": """
name: all types
description: every primitive type, short and long form
timeout: 5
max_events: 5000
primitives:
  L: lock
  R: {type: rlock}
  S: {type: semaphore, value: 2}
  S0: semaphore
  B: {type: bounded_semaphore, value: 3}
  E: event
  C: {type: condition, lock: L}
  C2: condition
  BA: {type: barrier, parties: 2}
  Q: {type: queue, maxsize: 4}
  Q0: queue
  P: {type: pipe, between: [a, b], duplex: false}
  P2: {type: pipe, between: [a, b]}
  PO: {type: pool, workers: 2}
  PP: {type: pool, workers: 1, of: process}
shared: {x: 0, items: [], m: {k: 1}}
invariants:
  - {var: x, op: ">=", value: 0}
expect: [deadlock, race]
actors:
  - name: a
    kind: thread
    steps:
      - {acquire: L, timeout: 0.5}
      - {release: L}
      - {acquire: R, blocking: false}
      - release: R
      - with: S
        steps:
          - {write: {var: x, value: 1}}
          - {add: {var: x, value: 2}}
          - {append: {var: items, item: null}}
      - {wait: E, timeout: 1}
      - {set: E}
      - {clear: E}
      - with: C
        steps:
          - {notify: C, n: 2}
          - {notify_all: C}
          - {wait: C}
      - {wait: BA}
      - {put: Q}
      - {put: Q, item: null}
      - {put: Q, item: {a: 1}, timeout: 2}
      - {get: Q, blocking: false}
      - {get: Q0, timeout: 1}
      - {send: P}
      - {send: P2, item: 3}
      - {recv: P2, timeout: 1}
      - {read: x}
      - sleep: 0.01
      - log: hello
      - repeat: 2
        steps: [{read: x}]
      - if: {var: x, op: "==", value: 1}
        then: [{return: 5}]
        else: [{fail: boom}]
      - {start: c}
      - {join: c, timeout: 3}
      - {acquire: B}
      - {release: B}
      - {acquire: C2}
      - {release: C2}
      - {acquire: S0}
      - {release: S0}
      - {return: null}
  - name: b
    kind: thread
    daemon: true
    steps:
      - {wait: BA}
      - {recv: P}
      - {send: P2}
  - name: c
    kind: thread
    autostart: false
    count: 2
    steps: [{log: hi}]
  - name: t
    kind: thread
    pool: PO
    count: 3
    steps: [{read: x}]
  - name: pt
    kind: process
    pool: PP
    steps: [{log: p}]
""",
    "coroutines": """
name: coroutines
primitives: {L: lock, Q: {type: queue, maxsize: 1}, E: event, S: {type: semaphore, value: 1}}
actors:
  - name: a
    kind: coroutine
    steps:
      - {with: L, steps: [{put: Q, item: 1}]}
      - {get: Q}
      - {set: E}
      - {wait: E}
      - {with: S, steps: []}
""",
}
