"""Shrinking: cut a failing schedule down to a short one that fails the same way.

This is delta debugging (Zeller and Hildebrandt, "Simplifying and Isolating
Failure-Inducing Input", IEEE TSE 2002) over the recorded event list: remove
chunks of events, replay the rest deterministically (skipping events that
can no longer happen, such as the delivery of a message that was never
sent), and keep the removal whenever the same property still breaks. The
chunks get smaller until no single event can be removed, or until the
replay budget runs out.

A safety violation is replayed as it is. A liveness violation is replayed
as its fault part only: the recovery and the fair liveness rounds are
generated again after each candidate, because removing a fault changes
what recovery must do.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from cluster.sim.events import SimEvent, applicable
from cluster.sim.faults import recovery_events
from cluster.sim.liveness import run_liveness_rounds
from cluster.sim.runner import LIVENESS_PROPERTIES, Runner
from cluster.sim.scheduler import RunResult
from cluster.sim.trace import replay, same_violation

# Replays one shrink may spend; each replays at most the original run.
DEFAULT_REPLAY_BUDGET = 3000


@dataclass(frozen=True, slots=True)
class ShrinkResult:
    result: RunResult  # the shortest failing run found
    replays: int  # candidate schedules replayed


def shrink(failing: RunResult, budget: int = DEFAULT_REPLAY_BUDGET) -> ShrinkResult:
    """Return a shorter run that breaks the same property as `failing`."""
    if failing.violation is None:
        raise ValueError("only a failing run can be shrunk")
    liveness = failing.violation.name in LIVENESS_PROPERTIES
    replays = 0
    best = failing

    def attempt(events: list[SimEvent]) -> RunResult | None:
        nonlocal replays
        replays += 1
        if liveness:
            candidate = _replay_with_recovery(failing, events)
        else:
            candidate = replay(failing.config, failing.seed, events, strict=False)
        return candidate if same_violation(candidate.violation, failing.violation) else None

    if liveness:
        assert failing.recovery_start is not None
        events = _fault_part(failing)
    else:
        events = list(failing.events)

    def accept(candidate: RunResult) -> list[SimEvent]:
        nonlocal best
        if len(candidate.events) <= len(best.events):
            best = candidate
        return _fault_part(candidate) if liveness else list(candidate.events)

    events = _ddmin(events, attempt, accept, lambda: replays < budget)
    return ShrinkResult(best, replays)


def _ddmin(
    events: list[SimEvent],
    attempt: Callable[[list[SimEvent]], RunResult | None],
    accept: Callable[[RunResult], list[SimEvent]],
    within_budget: Callable[[], bool],
) -> list[SimEvent]:
    """Remove whole classes of events, then chunks of halving size, until nothing more can go.

    A class is every event with one op on one node or link (all ticks of
    client 2, all drops, ...); removing one at once is the quickest win. The
    chunk pass then walks the list once per chunk size, keeping its place
    after a successful removal, so each size costs about len/size replays.
    """
    for key in sorted({_event_class(event) for event in events}):
        if not within_budget():
            return events
        candidate = attempt([event for event in events if _event_class(event) != key])
        if candidate is not None:
            events = accept(candidate)

    progress = True
    while progress and within_budget():
        progress = False
        size = max(1, len(events) // 2)
        while size >= 1 and within_budget():
            start = 0
            while start < len(events) and within_budget():
                candidate = attempt(events[:start] + events[start + size :])
                if candidate is not None and len(candidate.events) < len(events) + 1:
                    shorter = accept(candidate)
                    if len(shorter) < len(events):
                        progress = True
                    events = shorter
                else:
                    start += size
            size //= 2
    return events


def _event_class(event: SimEvent) -> str:
    subject = event.node or event.source or ()
    target = event.target or ()
    return f"{event.op} {subject} {target}"


def _fault_part(result: RunResult) -> list[SimEvent]:
    """The events before the liveness rounds and the recovery that precedes them."""
    end = result.recovery_start if result.recovery_start is not None else len(result.events)
    events = result.events[:end]
    while events and events[-1].op in ("heal", "resume", "restart"):
        events.pop()
    return events


def _replay_with_recovery(failing: RunResult, events: list[SimEvent]) -> RunResult:
    runner = Runner(failing.config, failing.seed)
    for event in events:
        if applicable(runner.world, event) and not runner.step(event):
            return RunResult(failing.config, failing.seed, runner.events, runner.violation, None)
    for event in recovery_events(runner.world):
        if not runner.step(event):
            return RunResult(failing.config, failing.seed, runner.events, runner.violation, None)
    recovery_start = len(runner.events)
    run_liveness_rounds(runner, random.Random(failing.seed))
    return RunResult(failing.config, failing.seed, runner.events, runner.violation, recovery_start)
