"""The configuration of a simulated cluster, and a runner that applies events one by one.

`Runner` is the one place where an event changes the world: it applies the
event, records it, and checks every invariant after it. The random
scheduler, the liveness rounds, replay, shrinking and the scenario files all
go through it, so they agree on what a step is and on when a violation is
found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cluster.core.bugs import Bug
from cluster.core.timers import MAX_TIMER_TICKS, TIMER_RANGE_RULES, TIMER_RULES, Timers, TimersError
from cluster.error_text import json_value_text
from cluster.i18n import _
from cluster.sim.events import SimEvent, apply_event
from cluster.sim.world import World

# Invariant names, in the order a report lists them. They match the spec's.
INVARIANTS = (
    "ElectionSafetyInv",
    "EpochFencingInv",
    "CommittedOnAllInv",
    "LogMatchingInv",
    "OutputPrefixInv",
    "LamportOrderInv",
    "ClientOrderInv",
    "AckedCommittedInv",
)
LIVENESS_PROPERTIES = ("LivenessLeaderElected", "LivenessPendingCommits")

FAULT_KINDS = ("crash", "restart", "partition", "drop", "duplicate", "reorder", "pause")

# Inclusive bounds of the integer settings. The `cluster simulate` options and
# trace files share them, so a trace cannot build a world the options reject.
MAX_NODES = 15
MAX_CLIENTS = 64
# The largest seed. `cluster simulate --seed`, scenario files and traces accept 0 to it.
MAX_SEED = 2**63 - 1
SETTING_BOUNDS: dict[str, tuple[int, int]] = {
    "sync": (1, MAX_NODES),
    "store": (1, MAX_NODES),
    "clients": (1, MAX_CLIENTS),
    "messages": (0, 100_000),
    "steps": (1, 10**9),
    "window": (1, 1000),
}


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate: cluster size, workload, faults, bugs and the length of the run."""

    sync: int = 3
    store: int = 3
    clients: int = 2
    messages: int = 8
    steps: int = 3000
    faults: frozenset[str] = frozenset(FAULT_KINDS)
    bugs: frozenset[Bug] = frozenset()
    window: int = 4
    timers: Timers = field(default_factory=Timers)
    # Faults happen in the first `fault_fraction` of the random steps only.
    fault_fraction: float = 0.5
    liveness: bool = True

    def build_world(self, seed: int) -> World:
        world = World(
            sync_count=self.sync,
            store_count=self.store,
            client_count=self.clients,
            messages_per_client=self.messages,
            seed=seed,
            bugs=self.bugs,
            timers=self.timers,
            window=self.window,
        )
        world.keep_events = False
        return world

    def to_json(self) -> dict[str, Any]:
        timers = self.timers
        return {
            "sync": self.sync,
            "store": self.store,
            "clients": self.clients,
            "messages": self.messages,
            "steps": self.steps,
            "faults": sorted(self.faults),
            "window": self.window,
            "fault_fraction": self.fault_fraction,
            "liveness": self.liveness,
            "timers": {name: getattr(timers, name) for name in Timers.__dataclass_fields__},
        }

    @staticmethod
    def from_json(data: Any, bugs: frozenset[Bug]) -> SimConfig:
        """Build a configuration from its JSON form; raise ValueError naming the invalid field and value."""
        if not isinstance(data, dict):
            raise ValueError(_("\"config\" must be a JSON object, found {config}").format(config=json_value_text(data)))
        return SimConfig(
            sync=_bounded_integer(data, "sync"),
            store=_bounded_integer(data, "store"),
            clients=_bounded_integer(data, "clients"),
            messages=_bounded_integer(data, "messages"),
            # An --explore trace records 0 random steps, so a trace may have 0 where the option needs 1.
            steps=_bounded_integer(data, "steps", low=0),
            faults=_faults(data.get("faults", [])),
            bugs=bugs,
            window=_bounded_integer(data, "window", default=4),
            timers=_timers(data.get("timers", {})),
            fault_fraction=_fault_fraction(data.get("fault_fraction", 0.5)),
            liveness=_liveness(data.get("liveness", True)),
        )


def _is_integer(value: Any) -> bool:
    # JSON true and false load as bool, which is a subclass of int.
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded_integer(data: dict[str, Any], name: str, low: int | None = None, default: int | None = None) -> int:
    """Return the integer field `name` of `data`, checked against SETTING_BOUNDS. A given `low` replaces its minimum."""
    bound_low, high = SETTING_BOUNDS[name]
    if low is None:
        low = bound_low
    if name not in data:
        if default is None:
            raise ValueError(_("\"config.{field}\" is missing; expected an integer from {low} to {high}").format(
                field=name, low=low, high=high))
        return default
    value = data[name]
    if not _is_integer(value) or not low <= value <= high:
        raise ValueError(_("\"config.{field}\" must be an integer from {low} to {high}, found {value}").format(
            field=name, low=low, high=high, value=json_value_text(value)))
    return int(value)


def _faults(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(_("\"config.faults\" must be a list of fault kinds, found {value}").format(
            value=json_value_text(value)))
    unknown = set(value) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(_("unknown fault kinds {unknown}; known: {known}").format(
            unknown=sorted(unknown), known=", ".join(FAULT_KINDS)))
    return frozenset(value)


def _timers(value: Any) -> Timers:
    if not isinstance(value, dict):
        raise ValueError(_("\"config.timers\" must be a JSON object, found {value}").format(
            value=json_value_text(value)))
    known = list(Timers.__dataclass_fields__)
    for name, ticks in value.items():
        if name not in known:
            raise ValueError(_("unknown timer {name!r} in \"config.timers\"; known timers: {known}").format(
                name=name, known=", ".join(known)))
        if not _is_integer(ticks) or not 1 <= ticks <= MAX_TIMER_TICKS:
            raise ValueError(_("\"config.timers.{field}\" must be an integer from 1 to {high} ticks, "
                               "found {value}").format(field=name, high=MAX_TIMER_TICKS, value=json_value_text(ticks)))
    try:
        return Timers(**value)
    except TimersError as error:
        raise ValueError(_("\"config.timers\" are inconsistent: {error}").format(
            error=describe_timers_error(error))) from None


def describe_timers_error(error: TimersError) -> str:
    """Return the broken timer rule in the locale's language, with the values that broke it."""
    if error.rule in TIMER_RANGE_RULES:
        return _("{timer} must be from 1 to {high} ticks, found {value}").format(
            timer=error.rule.names[0], high=MAX_TIMER_TICKS, value=error.values[0])
    rules = dict(zip(TIMER_RULES, (
        _("election timeouts must satisfy heartbeat_interval < min <= max"),
        _("election retries must satisfy 1 <= leader_lost_delay <= election_retry_max < election_timeout_min"),
    ), strict=True))
    return _("{rule}, found {values}").format(rule=rules[error.rule], values=error.found())


def _fault_fraction(value: Any) -> float:
    # `not 0 <= value <= 1` also rejects NaN, which Python's json module accepts.
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(_("\"config.fault_fraction\" must be a number from 0 to 1, found {value}").format(
            value=json_value_text(value)))
    return float(value)


def _liveness(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(_("\"config.liveness\" must be true or false, found {value}").format(
            value=json_value_text(value)))
    return value


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken property: its spec name, what broke, and the 1-based step after which it broke."""

    name: str
    details: tuple[str, ...]
    step: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "step": self.step, "details": list(self.details)}


class Runner:
    """Applies events to one world, records them, and checks the invariants after each."""

    def __init__(self, config: SimConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.world = config.build_world(seed)
        self.events: list[SimEvent] = []
        self.violation: Violation | None = None

    def step(self, event: SimEvent) -> bool:
        """Apply `event` and check the invariants; return False once one is violated."""
        apply_event(self.world, event)
        self.events.append(event)
        found = self.world.check_invariants()
        if found:
            name = next(name for name in INVARIANTS if name in found)
            self.violation = Violation(name, tuple(found[name]), len(self.events))
            return False
        return True

    def fail(self, name: str, details: list[str]) -> None:
        """Record a violation found outside the invariant checks (a liveness property)."""
        self.violation = Violation(name, tuple(details), len(self.events))
