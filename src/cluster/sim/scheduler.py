"""The seeded random scheduler: one run of the simulator from a seed.

A run has three phases:

1. `steps` random steps. Each step delivers a message (the oldest in flight
   on its link, as TCP would), ticks one node or client, completes one
   pending output-file operation, or, during the first `fault_fraction` of
   the steps, injects a fault (see `cluster.sim.faults`).
2. At the end of the fault window, every fault ends: the partition heals,
   paused nodes resume and crashed nodes restart. The remaining random steps
   have no faults.
3. Liveness rounds (see `cluster.sim.liveness`) check that the cluster then
   elects a leader and acknowledges every client message within a bound.

Each seed also draws a profile for its run: how often nodes tick compared
with how often messages arrive, how slowly output operations finish, how
often faults strike and which fault kinds are on. Varying the profile from
seed to seed ("swarm testing") reaches more kinds of interleaving than one
fixed mix, for example slow networks that split votes or slow disks that
leave a deposed leader's append pending.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cluster.sim.events import SimEvent
from cluster.sim.faults import FaultInjector
from cluster.sim.liveness import run_liveness_rounds
from cluster.sim.runner import Runner, SimConfig, Violation
from cluster.sim.world import Address, World


@dataclass(frozen=True, slots=True)
class Profile:
    """The mix of steps of one run, drawn from its seed."""

    tick_weight: float  # relative to one message delivery
    output_weight: float  # relative to one message delivery
    fault_rate: float  # chance that a step in the fault window injects a fault
    faults: frozenset[str]

    @staticmethod
    def draw(rng: random.Random, faults: frozenset[str]) -> Profile:
        kinds = frozenset(kind for kind in sorted(faults) if rng.random() < 0.75)
        if faults and not kinds:
            kinds = frozenset([rng.choice(sorted(faults))])
        return Profile(
            tick_weight=rng.choice((0.25, 0.5, 1.0, 2.0, 4.0)),
            output_weight=rng.choice((0.02, 0.1, 0.5, 1.0)),
            fault_rate=rng.choice((0.01, 0.03, 0.1)),
            faults=kinds,
        )


@dataclass(slots=True)
class RunResult:
    """The events a run applied, the violation it found (if any), and where recovery began."""

    config: SimConfig
    seed: int
    events: list[SimEvent]
    violation: Violation | None
    recovery_start: int | None  # index in `events` of the first liveness round, None if not reached


class RandomScheduler:
    """Chooses the next step of a run from a seeded random generator."""

    def __init__(self, world: World, rng: random.Random, profile: Profile) -> None:
        self.world = world
        self.rng = rng
        self.profile = profile
        self.faults = FaultInjector(world, rng, profile.faults)
        self.tickers: list[Address] = (
            [("sync", node) for node in world.sync_ids]
            + [("store", node) for node in world.store_ids]
            + [("client", client) for client in world.client_ids]
        )

    def next_event(self, step: int, faulty: bool) -> SimEvent | None:
        """Return the event for step `step`; `faulty` says whether faults may strike."""
        rng = self.rng
        if faulty:
            ending = self.faults.due(step)
            if ending is not None:
                return ending
            if rng.random() < self.profile.fault_rate:
                fault = self.faults.choose(step)
                if fault is not None:
                    return fault

        world = self.world
        deliver_weight = float(len(world.network))
        tick_weight = self.profile.tick_weight * len(self.tickers)
        output_weight = self.profile.output_weight * len(world.pending_output)
        pick = rng.random() * (deliver_weight + tick_weight + output_weight)
        if pick < deliver_weight:
            event = self._delivery()
            if event is not None:
                return event
        elif pick >= deliver_weight + tick_weight:
            event = self._output_completion()
            if event is not None:
                return event
        return self._tick()

    def _delivery(self) -> SimEvent | None:
        world = self.world
        network = world.network
        packet = network[self.rng.randrange(len(network))]
        if packet.target in world.paused:
            return None
        source, target = packet.source, packet.target
        for oldest in network:
            if oldest.source == source and oldest.target == target:
                return SimEvent("deliver", source=source, target=target, seq=oldest.seq)
        raise AssertionError("the chosen packet is in the network")

    def _output_completion(self) -> SimEvent | None:
        world = self.world
        pending = world.pending_output[self.rng.randrange(len(world.pending_output))]
        address = ("sync", pending.node)
        if address in world.paused:
            return None
        return SimEvent("output", node=address, seq=pending.seq)

    def _tick(self) -> SimEvent | None:
        world = self.world
        for _ in range(4):
            address = self.tickers[self.rng.randrange(len(self.tickers))]
            if address not in world.paused and world.is_live(address):
                return SimEvent("tick", node=address)
        return None


def simulate(config: SimConfig, seed: int) -> RunResult:
    """Run one random schedule from `seed` and stop at the first violation."""
    rng = random.Random(seed)
    runner = Runner(config, seed)
    profile = Profile.draw(rng, config.faults)
    scheduler = RandomScheduler(runner.world, rng, profile)
    fault_steps = int(config.steps * config.fault_fraction) if profile.faults else 0

    step = 0
    while step < config.steps:
        if step == fault_steps and fault_steps:
            for ending in scheduler.faults.recover_all():
                if not runner.step(ending):
                    return RunResult(config, seed, runner.events, runner.violation, None)
        chosen = scheduler.next_event(step, step < fault_steps)
        step += 1
        if chosen is None:
            continue
        if not runner.step(chosen):
            return RunResult(config, seed, runner.events, runner.violation, None)

    if not config.liveness:
        return RunResult(config, seed, runner.events, None, None)
    for event in scheduler.faults.recover_all():
        if not runner.step(event):
            return RunResult(config, seed, runner.events, runner.violation, None)
    recovery_start = len(runner.events)
    run_liveness_rounds(runner, random.Random(rng.getrandbits(64)))
    return RunResult(config, seed, runner.events, runner.violation, recovery_start)
