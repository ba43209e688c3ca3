"""Fault injection: which fault to inject next, on which node or message, and for how long.

Faults that last a while (a crash, a partition, a pause) get a random
duration in steps; when it runs out the injector ends the fault (restart,
heal, resume). Half of the crash and pause targets are the current sync
leader or store primary, because most protocol mistakes show only when one
of those two stops at the wrong moment.

At most a minority of sync nodes and all but one store node are down
(crashed or paused) at once, so the cluster keeps making progress between
faults and the run explores what happens after a failover rather than a
cluster that has stopped.
"""

from __future__ import annotations

import math
import random

from cluster.core.sync_node import Role
from cluster.sim.events import SimEvent
from cluster.sim.world import Address, World

# Durations, in scheduler steps, of faults that last a while, drawn log-uniformly so
# that short blips and outages longer than an election are both common.
MIN_FAULT_STEPS = 10
MAX_FAULT_STEPS = 2000
LONG_PAUSE_STEPS = 1000


class FaultInjector:
    """Chooses fault events for one run, from the enabled fault kinds."""

    def __init__(self, world: World, rng: random.Random, kinds: frozenset[str]) -> None:
        self.world = world
        self.rng = rng
        self.kinds = kinds
        self.restart_at: dict[Address, int] = {}
        self.resume_at: dict[Address, int] = {}
        self.heal_at = -1

    def due(self, step: int) -> SimEvent | None:
        """Return the end of a fault whose duration ran out at `step`, if any."""
        world = self.world
        for address, when in sorted(self.restart_at.items()):
            if when <= step:
                del self.restart_at[address]
                if not world.is_live(address):
                    return SimEvent("restart", node=address)
        for address, when in sorted(self.resume_at.items()):
            if when <= step:
                del self.resume_at[address]
                if address in world.paused:
                    return SimEvent("resume", node=address)
        if 0 <= self.heal_at <= step:
            self.heal_at = -1
            if world.partition:
                return SimEvent("heal")
        return None

    def choose(self, step: int) -> SimEvent | None:
        """Pick one enabled fault that can happen now, or None when none can."""
        kinds = sorted(self.kinds)
        self.rng.shuffle(kinds)
        for kind in kinds:
            event = self._try(kind, step)
            if event is not None:
                return event
        return None

    def recover_all(self) -> list[SimEvent]:
        """Return the events that end every fault, and forget the scheduled ends."""
        self.restart_at.clear()
        self.resume_at.clear()
        self.heal_at = -1
        return recovery_events(self.world)

    # --- One kind of fault -------------------------------------------------------------

    def _try(self, kind: str, step: int) -> SimEvent | None:
        world = self.world
        rng = self.rng
        if kind in ("drop", "duplicate"):
            if not world.network:
                return None
            packet = rng.choice(world.network)
            return SimEvent(kind, source=packet.source, target=packet.target, seq=packet.seq)
        if kind == "reorder":
            return self._reorder()
        if kind == "crash":
            target = self._stop_target()
            if target is None:
                return None
            if "restart" in self.kinds:
                self.restart_at[target] = step + self._duration()
            return SimEvent("crash", node=target)
        if kind == "restart":
            down = [address for address in self._cluster_nodes() if not world.is_live(address)]
            return SimEvent("restart", node=rng.choice(down)) if down else None
        if kind == "pause":
            target = self._stop_target()
            if target is None:
                return None
            duration = self._duration()
            if any(("sync", pending.node) == target for pending in world.pending_output):
                # A leader stopped in the middle of an output append, for longer than it
                # takes to elect and install a successor: the case the output fence exists for.
                duration = self.rng.randint(LONG_PAUSE_STEPS, 2 * LONG_PAUSE_STEPS)
            self.resume_at[target] = step + duration
            return SimEvent("pause", node=target)
        if kind == "partition":
            if world.partition:
                return None
            nodes = self._cluster_nodes()
            size = rng.randint(1, max(1, len(nodes) // 2))
            group = tuple(sorted(rng.sample(nodes, size)))
            self.heal_at = step + self._duration()
            return SimEvent("partition", group=group)
        raise ValueError(f"unknown fault kind {kind!r}")

    def _reorder(self) -> SimEvent | None:
        """Deliver a message of a link that is not the oldest one in flight on it."""
        world = self.world
        later = []
        seen: set[tuple[Address, Address]] = set()
        for packet in world.network:
            link = (packet.source, packet.target)
            if link in seen and packet.target not in world.paused:
                later.append(packet)
            seen.add(link)
        if not later:
            return None
        packet = self.rng.choice(later)
        return SimEvent("deliver", source=packet.source, target=packet.target, seq=packet.seq)

    def _stop_target(self) -> Address | None:
        """Pick a live, running node to crash or pause, favouring the leader and the primary."""
        world = self.world
        down_sync = sum(1 for node, sync in world.sync.items() if sync is None or ("sync", node) in world.paused)
        down_store = sum(
            1 for node, store in world.store.items() if store is None or ("store", node) in world.paused
        )
        candidates = [
            address
            for address in self._cluster_nodes()
            if world.is_live(address) and address not in world.paused
            and (down_sync < (len(world.sync) - 1) // 2 if address[0] == "sync" else down_store < len(world.store) - 1)
        ]
        if not candidates:
            return None
        if self.rng.random() < 0.5:
            favoured = [address for address in self._key_nodes() if address in candidates]
            if favoured:
                return self.rng.choice(favoured)
        return self.rng.choice(candidates)

    def _key_nodes(self) -> list[Address]:
        """The sync leader with the highest term, the primary it installed, and sync nodes
        with an output operation pending (stopping one of those tests the output fence)."""
        world = self.world
        nodes: list[Address] = sorted({("sync", pending.node) for pending in world.pending_output})
        leaders = [sync for sync in world.sync.values() if sync is not None and sync.role is Role.LEADER]
        if leaders:
            leader = max(leaders, key=lambda sync: sync.term)
            nodes += [("sync", leader.node_id), ("store", leader.config.primary)]
        return nodes

    def _cluster_nodes(self) -> list[Address]:
        world = self.world
        return [("sync", node) for node in world.sync_ids] + [("store", node) for node in world.store_ids]

    def _duration(self) -> int:
        return int(math.exp(self.rng.uniform(math.log(MIN_FAULT_STEPS), math.log(MAX_FAULT_STEPS))))


def recovery_events(world: World) -> list[SimEvent]:
    """Return the events that end every fault: heal, resume and restart, in a fixed order."""
    events: list[SimEvent] = []
    if world.partition:
        events.append(SimEvent("heal"))
    events += [SimEvent("resume", node=address) for address in sorted(world.paused)]
    for role, ids in (("sync", world.sync_ids), ("store", world.store_ids)):
        events += [SimEvent("restart", node=(role, node)) for node in ids if not world.is_live((role, node))]
    return events
