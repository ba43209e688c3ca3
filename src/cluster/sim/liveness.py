"""Liveness after the faults stop: a leader is elected, and every client message is acknowledged.

Once every node runs and the network is healed, the simulator drives the
cluster in fair rounds. A round delivers every message that was in flight
when the round began (in random order, but in order on each link),
completes every output operation pending when it began, and then ticks
every node and client once (one `tick_all` event). A message therefore
waits at most one tick, well under the heartbeat interval.

The bounds follow from the timers (`cluster.core.timers.Timers`):

- `LivenessLeaderElected`: some sync node leads, followed by a majority,
  within `leader_bound` = 5 x election_timeout_max rounds. A follower stands
  after at most election_timeout_max ticks without a leader, and an election
  whose candidate times out a couple of ticks before the others wins within
  a few more rounds (pre-vote, vote, heartbeat). Timeouts are drawn at random
  from the whole range, so a split vote is rare and two in a row rarer:
  the bound allows four failed elections.
- `LivenessPendingCommits`: every client message is acknowledged within
  `ack_bound` = leader_bound + 2 x client_retry + store_failure_timeout
  + 2 x write_retry + 50 rounds. After the leader, the new epoch takes a few
  rounds (configuration stored by a majority, NewEpoch, EpochSync,
  EpochReady); a store member that does not answer is replaced after
  store_failure_timeout; a write or fetch without answer is resent after
  write_retry; a client whose messages were lost waits client_retry before
  it resends, and may have to do so once more if it first reaches a node
  that has just lost the leadership. 50 rounds cover the message round
  trips between these steps.

The bounds are in rounds, not steps, because a round's step count depends
on the traffic. The test suite checks both bounds on thousands of schedules
with every fault kind.
"""

from __future__ import annotations

import random

from cluster.core.sync_node import Role
from cluster.core.timers import Timers
from cluster.i18n import _, ngettext
from cluster.sim.events import SimEvent
from cluster.sim.runner import Runner
from cluster.sim.world import Address, World


def leader_bound(timers: Timers) -> int:
    """Rounds within which a leader must be elected once the faults stop."""
    return 5 * timers.election_timeout_max


def ack_bound(timers: Timers) -> int:
    """Rounds within which every client message must be acknowledged once the faults stop."""
    return (
        leader_bound(timers) + 2 * timers.client_retry + timers.store_failure_timeout + 2 * timers.write_retry + 50
    )


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

    def __init__(self, timers: Timers) -> None:
        self.leader_bound = leader_bound(timers)
        self.ack_bound = ack_bound(timers)
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

        if self.leader_round is None and self.rounds > self.leader_bound:
            return ("LivenessLeaderElected", [
                _("no sync node led a majority within {rounds} fault-free rounds").format(rounds=self.leader_bound)
            ])
        if self.done_round is None and self.rounds > self.ack_bound:
            waiting = [
                ngettext("client {client} has {count} unacknowledged message",
                         "client {client} has {count} unacknowledged messages",
                         len(client.in_flight) + len(client.queue)).format(
                    client=client.client_id, count=len(client.in_flight) + len(client.queue))
                for client in world.clients.values()
                if not client.done
            ]
            return ("LivenessPendingCommits", [
                _("client messages still unacknowledged after {rounds} fault-free rounds").format(
                    rounds=self.ack_bound),
                *waiting,
            ])
        return None

    @property
    def finished(self) -> bool:
        return self.leader_round is not None and self.done_round is not None


def run_liveness_rounds(runner: Runner, rng: random.Random) -> None:
    """Drive fair rounds until the cluster meets both bounds, or record the one it broke."""
    monitor = LivenessMonitor(runner.config.timers)
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
