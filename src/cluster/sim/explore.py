"""Exhaustive exploration of a tiny cluster: every schedule up to a depth, with state hashing.

From the initial world, a breadth-first search applies every enabled step
(deliver any message in flight, tick any node or client, complete any
pending output operation) and keeps a world only if its canonical
fingerprint is new. Every distinct state is checked against the invariants.

The fingerprint covers everything that decides the future and the
invariants: each node's state (crashed nodes as None), the disks, the
network as a multiset of (source, target, message) (labels such as packet
ids and per-link numbers are left out, so two schedules that reach the same
messages meet), the output file and its fence, the pending output
operations as a multiset, and the ghost state. It leaves out the nodes'
random generators: the exploration timers draw every election timeout from
a range of one value, so the draws cannot change what happens.

Messages are delivered in any order here (the network is a multiset), which
covers every reordering; faults (crash, drop, partition) are not explored,
to keep the state space small enough to enumerate.
"""

from __future__ import annotations

import dataclasses
import enum
import pickle
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from cluster.core.timers import Timers
from cluster.sim.events import SimEvent, apply_event
from cluster.sim.runner import INVARIANTS, SimConfig, Violation
from cluster.sim.scheduler import RunResult
from cluster.sim.world import Address, World

# Short timers so that an election, an epoch and a write fit in a small depth.
# min == max makes every random draw of an election timeout the same value.
EXPLORE_TIMERS = Timers(
    heartbeat_interval=1,
    election_timeout_min=2,
    election_timeout_max=2,
    store_failure_timeout=4,
    write_retry=4,
    leader_lost_delay=1,
    election_retry_max=1,
    client_retry=8,
    client_backoff=1,
)
EXPLORE_CONFIG = SimConfig(
    sync=3, store=2, clients=1, messages=1, steps=0, faults=frozenset(), timers=EXPLORE_TIMERS, liveness=False,
)

# Node attributes that never change after construction.
_CONSTANT_ATTRIBUTES = frozenset({
    "node_id", "client_id", "sync_ids", "peers", "store_ids", "majority", "rng", "timers", "bugs", "window",
})


@dataclass(frozen=True, slots=True)
class ExploreResult:
    depth: int
    explored: int  # states reached, counting repeats
    distinct: int  # distinct fingerprints
    seconds: float
    violation: RunResult | None  # the first path to a state that breaks an invariant


def explore(config: SimConfig, depth: int, seed: int = 0) -> ExploreResult:
    """Enumerate every schedule of `config` up to `depth` steps, skipping states already seen."""
    started = time.perf_counter()
    root = config.build_world(seed)
    seen = {fingerprint(root)}
    frontier: deque[tuple[World, list[SimEvent]]] = deque([(root, [])])
    explored = 1

    for _ in range(depth):
        next_frontier: deque[tuple[World, list[SimEvent]]] = deque()
        for world, path in frontier:
            snapshot = pickle.dumps(world)
            for event in enabled_events(world):
                child: World = pickle.loads(snapshot)
                apply_event(child, event)
                explored += 1
                key = fingerprint(child)
                if key in seen:
                    continue
                seen.add(key)
                child_path = [*path, event]
                found = child.check_invariants()
                if found:
                    name = next(name for name in INVARIANTS if name in found)
                    violation = Violation(name, tuple(found[name]), len(child_path))
                    result = RunResult(config, seed, child_path, violation, None)
                    return ExploreResult(depth, explored, len(seen), time.perf_counter() - started, result)
                next_frontier.append((child, child_path))
        frontier = next_frontier
    return ExploreResult(depth, explored, len(seen), time.perf_counter() - started, None)


def enabled_events(world: World) -> list[SimEvent]:
    """Every step the world can take now; identical messages on one link count once."""
    events: list[SimEvent] = []
    delivered: set[tuple[Address, Address, Any]] = set()
    for packet in world.network:
        key = (packet.source, packet.target, packet.message)
        if key in delivered:
            continue
        delivered.add(key)
        events.append(SimEvent("deliver", source=packet.source, target=packet.target, seq=packet.seq))
    for role, ids in (("sync", world.sync_ids), ("store", world.store_ids), ("client", world.client_ids)):
        events += [SimEvent("tick", node=(role, node)) for node in ids if world.is_live((role, node))]
    events += [SimEvent("output", node=("sync", pending.node), seq=pending.seq) for pending in world.pending_output]
    return events


def fingerprint(world: World) -> int:
    """Return a hash of the canonical state of `world` (see the module docstring)."""
    state = (
        tuple(_canonical(world.sync[node]) for node in world.sync_ids),
        tuple(_canonical(world.store[node]) for node in world.store_ids),
        tuple(_canonical(world.clients[client]) for client in world.client_ids),
        _canonical(world.sync_disk),
        _canonical(world.store_disk),
        _sorted_tuple((packet.source, packet.target, _canonical(packet.message), packet.conn)
                      for packet in world.network),
        _canonical(world.output),
        world.fence,
        _sorted_tuple((pending.node, _canonical(pending.effect)) for pending in world.pending_output),
        _canonical(world.leaders),
        _canonical(world.committed),
        _sorted_tuple(_canonical(ack) for ack in world.acks),
        _canonical(world.epoch_history),
        _canonical(world.current_config),
        len(world.commit_conflicts),
    )
    return hash(state)


def _sorted_tuple(items: Any) -> tuple[Any, ...]:
    return tuple(sorted(items, key=repr))


def _canonical(value: Any) -> Any:
    """Turn a node, message or container into nested tuples of plain values, in a fixed order."""
    if value is None or isinstance(value, int | str | float | bool):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | deque):
        return tuple(_canonical(item) for item in value)
    if isinstance(value, set | frozenset):
        return _sorted_tuple(_canonical(item) for item in value)
    if isinstance(value, dict):
        return _sorted_tuple((_canonical(key), _canonical(item)) for key, item in value.items())
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, *(_canonical(getattr(value, field.name)) for field in dataclasses.fields(value)))
    if hasattr(value, "__dict__"):
        items = sorted(vars(value).items())
        return (type(value).__name__, *((name, _canonical(item)) for name, item in items
                                        if name not in _CONSTANT_ATTRIBUTES))
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")
