"""Liveness after the faults stop: a leader is elected, and every client message is acknowledged.

Once every node runs and the network is healed, the simulator drives the
cluster in fair rounds. A round delivers every message that was in flight
when the round began (in random order, but in order on each link),
completes every output operation pending when it began, and then ticks
every node and client once (one `tick_all` event). A message therefore
waits at most one tick, well under the heartbeat interval.

The bounds, for the default timers (election timeout 10 to 20 ticks,
heartbeat 3, store failure timeout 20, write retry 20, client retry 100):

- `LivenessLeaderElected`: some sync node leads, followed by a majority,
  within `LEADER_BOUND_ROUNDS` = 100 rounds. A follower stands after at most
  20 ticks without a leader, and an election whose candidate times out at
  least 2 ticks before the others wins within about 3 more rounds. With
  timeouts drawn from 11 values, about half of the elections split, so 100
  rounds allow 4 failed elections before the bound (probability about 1/16)
  and more in practice, because a split vote in one round rarely repeats.
- `LivenessPendingCommits`: every client message is acknowledged within
  `ACK_BOUND_ROUNDS` = 400 rounds. After the leader, the new epoch takes a
  few rounds (configuration replicated, NewEpoch, EpochSync, EpochReady),
  a store member that restarted may first be replaced (up to 20 ticks) and
  later caught up and added back, and a client whose messages were lost
  waits up to its retry timeout (100 ticks) and may try one sync node after
  another (up to N retries in the worst case, once each, but a follower
  redirects at once, so in practice one). That is about
  100 + 20 + 20 + 100 + 20 rounds plus a few message rounds: 400 leaves a margin
  for one more election.

The bounds are stated in rounds, not steps, because a round's step count
depends on the traffic. The test suite checks both bounds on thousands of
schedules with every fault kind.
"""

from __future__ import annotations

import random

from cluster.core.sync_node import Role
from cluster.sim.events import SimEvent
from cluster.sim.runner import Runner
from cluster.sim.world import Address, World

LEADER_BOUND_ROUNDS = 100
ACK_BOUND_ROUNDS = 400


def leader_elected(world: World) -> int | None:
    """Return the sync node that leads with a majority of sync nodes following it, if any."""
    majority = len(world.sync_ids) // 2 + 1
    for sync in world.sync.values():
        if sync is None or sync.role is not Role.LEADER:
            continue
        followers = sum(
            1
            for other in world.sync.values()
            if other is not None and other.term == sync.term and other.leader_id == sync.node_id
        )
        if followers >= majority:
            return sync.node_id
    return None


class LivenessMonitor:
    """Counts fair rounds and reports the first liveness bound that a run exceeds."""

    def __init__(self) -> None:
        self.rounds = 0
        self.leader_round: int | None = None
        self.done_round: int | None = None

    def after_round(self, world: World) -> tuple[str, list[str]] | None:
        """Update after one round; return (property, details) when a bound was exceeded."""
        self.rounds += 1
        if self.leader_round is None and leader_elected(world) is not None:
            self.leader_round = self.rounds
        if self.done_round is None and world.all_acknowledged():
            self.done_round = self.rounds

        if self.leader_round is None and self.rounds > LEADER_BOUND_ROUNDS:
            return ("LivenessLeaderElected", [
                f"no sync node led a majority within {LEADER_BOUND_ROUNDS} fault-free rounds"
            ])
        if self.done_round is None and self.rounds > ACK_BOUND_ROUNDS:
            waiting = [
                f"client {client.client_id} has {len(client.in_flight) + len(client.queue)} "
                f"unacknowledged messages"
                for client in world.clients.values()
                if not client.done
            ]
            return ("LivenessPendingCommits", [
                f"client messages still unacknowledged after {ACK_BOUND_ROUNDS} fault-free rounds", *waiting
            ])
        return None

    @property
    def finished(self) -> bool:
        return self.leader_round is not None and self.done_round is not None


def run_liveness_rounds(runner: Runner, rng: random.Random) -> None:
    """Drive fair rounds until the cluster meets both bounds, or record the one it broke."""
    monitor = LivenessMonitor()
    world = runner.world
    while not monitor.finished:
        for event in _round_events(world, rng):
            if not runner.step(event):
                return
        if not runner.step(SimEvent("tick_all")):
            return
        broken = monitor.after_round(world)
        if broken is not None:
            runner.fail(*broken)
            return


def _round_events(world: World, rng: random.Random) -> list[SimEvent]:
    """The deliveries and output completions of one round, chosen from the current state."""
    links: dict[tuple[Address, Address], list[int]] = {}
    for packet in world.network:
        links.setdefault((packet.source, packet.target), []).append(packet.seq)
    events: list[SimEvent] = []
    order = list(links)
    while order:
        index = rng.randrange(len(order))
        source, target = order[index]
        queue = links[order[index]]
        events.append(SimEvent("deliver", source=source, target=target, seq=queue.pop(0)))
        if not queue:
            order.pop(index)
    events += [SimEvent("output", node=("sync", pending.node), seq=pending.seq) for pending in world.pending_output]
    return events
