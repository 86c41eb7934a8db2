"""The vocabulary of a primitive type's *facts*: what its operations mean for who holds what
and for happens-before.

A type module declares ``FACTS = Facts(...)`` in its "facts" section; the trace's state pass
(``tracer.trace.state``) reads it through the registry and knows no type by name. A fact is
declared per op name (the op of the trace's events, ``acquire``, ``set``, ``put``, ...):

- **holding** (:attr:`Op.hold`): ``take`` (an ``ok`` return takes a hold), ``give`` (the
  event gives one back, unless it carries an ``error``), ``let_go`` (a condition's wait: its
  call lets go of every hold the actor has on the resource, its return takes them back,
  unless it failed). What is held is the primitive itself or, for a type with
  ``resource="lock"``, the declared primitive its ``lock`` option names; the hold then obeys
  *that* primitive's facts (its modes, its channels, its re-entrancy).
- **hold modes** (:attr:`Facts.modes`): how holders share the resource (one exclusive holder,
  counted holders as a semaphore's, shared readers) and which channels giving a hold back
  publishes and taking one takes up. The mode of a take is read from the call event's
  payload field :attr:`Facts.mode_field` (default :attr:`Facts.default_mode`); a give is in
  the mode its hold was taken in.
- **channels** (:attr:`Facts.channels`): how clocks travel between actors through the
  primitive. ``last``: the latest publication replaces the one before (a lock's release);
  ``all``: publications accumulate (semaphore releases, event sets, notifies, count downs);
  ``mail``: each publication is a message taken up by the event that receives its item (a
  queue's put -> get; with ``endpoints``, the option naming the two ends of a pipe, a message
  goes to the other end); ``round``: every arrival of a round reaches every departure of it
  (a barrier; ``parties`` names the option giving the round's size, without it arrivals
  accumulate).
- **mutual exclusion** (:attr:`Channel.mutex`): an order that only says who got in first in
  this run (a lock's release -> its next acquire). A pass asked for ``mutex=False`` (the
  lock-order analysis) leaves those channels out; ``signal`` names the option value that makes
  such a channel a signal all the same (a semaphore that starts at 0).
- **counts** (:attr:`Facts.counter`): a count the ops move (a latch's count down and up, a
  bounded semaphore's acquires minus releases), and the floor it must not go below (misuse).

Spawn, start, end, join and a pool's tasks are the actors' own edges: not a type's facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

HoldKind = Literal["take", "give", "let_go"]
ChannelKind = Literal["last", "all", "mail", "round"]


@dataclass(frozen=True)
class Channel:
    """One way clocks travel through a primitive (see the module's docstring)."""

    kind: ChannelKind
    mutex: bool = False  # an order of mutual exclusion (left out when mutex=False)
    # (option, value, default): the channel orders even without mutual exclusion when the
    # primitive's option has this value (a semaphore with ``value: 0`` is a signal)
    signal: tuple[str, Any, Any] | None = None
    endpoints: str | None = None  # mail: the option naming the two ends (a pipe's between)
    parties: str | None = None  # round: the option giving the number of parties


@dataclass(frozen=True)
class HoldMode:
    """How a hold taken in one mode shares the resource, and what it publishes and takes up.

    ``sharing``: ``exclusive`` (one holder at a time), ``counted`` (up to the primitive's
    value, as a semaphore), ``shared`` (any number of holders in this mode, none in an
    exclusive one: readers). ``gives``: the channels that giving such a hold back publishes
    on; ``takes``: the channels that taking it takes up. ``ordered``: whether holds in this
    mode are lock-order nodes (an actor can wait for the resource while holding others)."""

    sharing: Literal["exclusive", "counted", "shared"] = "exclusive"
    gives: tuple[str, ...] = ()
    takes: tuple[str, ...] = ()
    ordered: bool = True


@dataclass(frozen=True)
class Op:
    """What one op of the type means.

    ``hold``: see the module's docstring. ``publish``: the channels the op publishes the
    actor's clock on (at the call of a phased op, else at the event; not when it carries an
    ``error``); ``take``: the channels its ``ok`` return takes up. ``arrive``/``depart`` are
    for ``round`` and ``mail`` channels the same as publish/take: an op's call arrives (puts
    a message) and its return departs (gets one)."""

    hold: HoldKind | None = None
    publish: tuple[str, ...] = ()
    take: tuple[str, ...] = ()


@dataclass(frozen=True)
class Counter:
    """A count the ops move: ``ops`` maps an op to its step (+1, -1), scaled by the payload
    field ``amount`` when the event carries it; a phased op moves it at its ``ok`` return.
    The count starts at the primitive's ``option`` (``start`` when absent); going below
    ``floor`` is misuse, and the count is taken back to the floor. ``misuse`` says it in the
    user's terms, formatted with ``actor``, ``name`` (the primitive), ``seq``, ``count`` (where
    it went) and ``about`` (the primitive's option ``about[0]``, ``about[1]`` when absent)."""

    ops: Mapping[str, int]
    option: str | None = None
    start: int = 0
    amount: str | None = None
    floor: int = 0
    about: tuple[str, Any] | None = None
    misuse: str = ("{actor} takes {name}'s count below zero (seq {seq}: it would be {count}) — "
                   "count down only what was counted up")


@dataclass(frozen=True)
class Facts:
    """Everything a type declares for the state pass."""

    ops: Mapping[str, Op] = field(default_factory=dict)
    channels: Mapping[str, Channel] = field(default_factory=dict)
    # the hold modes, by name ("" for a type with one mode); empty: the type is never held
    modes: Mapping[str, HoldMode] = field(default_factory=dict)
    mode_field: str | None = None  # the call payload field that picks the mode of a take
    default_mode: str = ""
    resource: Literal["self", "lock"] = "self"  # what a hold holds (see the docstring)
    # the actor kinds whose re-take of a hold they have is re-entry (an rlock's), not a
    # wait for themselves; "*" is every kind
    reentrant: frozenset[str] = frozenset()
    # a release by an actor that does not hold it frees the primitive all the same
    # (``threading.Lock`` may be released by any thread)
    foreign_release_frees: bool = False
    counter: Counter | None = None

    def mode(self, name: str | None) -> HoldMode | None:
        """The hold mode ``name`` (the default one for None or an unknown name)."""
        if name is not None and name in self.modes:
            return self.modes[name]
        return self.modes.get(self.default_mode)

    def reentrant_for(self, kind: str | None) -> bool:
        return "*" in self.reentrant or (kind is not None and kind in self.reentrant)


# the facts of a name the scenario does not declare: a plain lock (what the engine's events
# on such a name can only be)
UNDECLARED = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"held": Channel("last", mutex=True)},
    modes={"": HoldMode("exclusive", gives=("held",), takes=("held",))},
    foreign_release_frees=True,
)

NO_FACTS = Facts()

__all__ = ["NO_FACTS", "UNDECLARED", "Channel", "Counter", "Facts", "HoldMode", "Op"]
