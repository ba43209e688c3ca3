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
from cluster.core.timers import Timers
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
    def from_json(data: dict[str, Any], bugs: frozenset[Bug]) -> SimConfig:
        """Build a configuration from its JSON form; raise ValueError, KeyError or TypeError when it is invalid."""
        if not isinstance(data, dict):
            raise ValueError(_("\"config\" must be a JSON object, found {config!r}").format(config=data))
        unknown = set(data.get("faults", ())) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(_("unknown fault kinds {unknown}; known: {known}").format(
                unknown=sorted(unknown), known=", ".join(FAULT_KINDS)))
        return SimConfig(
            sync=int(data["sync"]),
            store=int(data["store"]),
            clients=int(data["clients"]),
            messages=int(data["messages"]),
            steps=int(data["steps"]),
            faults=frozenset(data.get("faults", ())),
            bugs=bugs,
            window=int(data.get("window", 4)),
            timers=Timers(**data.get("timers", {})),
            fault_fraction=float(data.get("fault_fraction", 0.5)),
            liveness=bool(data.get("liveness", True)),
        )


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
