"""Load a diagram from a simulator trace by replaying it.

A trace records the events of a run (deliveries, ticks, faults) with the
seed, and together they fix the run, so a replay through the simulator's
`Runner` recovers what the trace does not store: the type and fields of each
message, when it was sent, and the protocol events of every node. Time is
the step number: step 0 is the world's construction (the clients' first
requests), step i the i-th event of the trace.

Messages sent across a partition are lost before they enter the network,
so they have no arrow; messages in flight when a partition starts are drawn
as lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cluster.diagram.model import Diagram, Lane, Mark, Message, Span
from cluster.diagram.node_events import mark_for_event, short_value
from cluster.diagram.run_logs import SourceError
from cluster.i18n import _
from cluster.sim.events import SimEvent, applicable
from cluster.sim.runner import Runner
from cluster.sim.trace import TraceError, read_trace
from cluster.sim.world import Address, Packet

# Maximum length, in characters, of the field text in a message's tooltip.
_DETAIL_CHARS = 240



def load_trace(path: Path) -> Diagram:
    """Replay the trace at `path` and return its diagram; raise SourceError when it cannot be replayed."""
    try:
        trace = read_trace(path)
    except TraceError as error:
        raise SourceError(str(error)) from None

    runner = Runner(trace.config, trace.seed)
    world = runner.world
    world.keep_events = True
    lanes = [Lane("sync", node) for node in world.sync_ids]
    lanes += [Lane("store", node) for node in world.store_ids]
    lanes += [Lane("client", node) for node in world.client_ids]
    diagram = Diagram(source=str(path), time_unit="step", lanes=lanes)
    replay = _Replay(diagram, runner)
    replay.collect(0)

    with _quiet_core_logs():
        for step, event in enumerate(trace.events, start=1):
            if not applicable(world, event):
                raise SourceError(_("{path}: event {step} ({event}) cannot happen in the replayed run; the trace "
                                    "was recorded with different code").format(path=path, step=step,
                                                                               event=event.to_json()))
            replay.before(step, event)
            ok = runner.step(event)
            replay.collect(step)
            if not ok:
                break
    replay.finish(len(runner.events))

    violation = runner.violation
    if violation is not None:
        target = _violation_lane(trace.events[violation.step - 1], lanes)
        diagram.marks.append(Mark(target, violation.step, "violation", violation.name, "; ".join(violation.details)))
    diagram.sort()
    return diagram


class _Replay:
    """Follows the packets and node events of one replay, step by step."""

    def __init__(self, diagram: Diagram, runner: Runner) -> None:
        self.diagram = diagram
        self.world = runner.world
        self.sent: dict[int, tuple[Packet, int]] = {}  # packet id -> (packet, step it was sent)
        self.events_seen = 0
        self.open_pauses: dict[Address, int] = {}
        self.open_partition: tuple[tuple[Lane, ...], int] | None = None

    def before(self, step: int, event: SimEvent) -> None:
        """Record what `event` does to messages and faults, before it changes the world."""
        if event.op in ("deliver", "drop") and event.source and event.target:
            packet = self.world.find_packet(event.source, event.target, event.seq)
            if packet is not None:
                self._finish_packet(packet, step, "delivered" if event.op == "deliver" else "dropped")
        elif event.op == "partition":
            group = frozenset(event.group)
            for packet in list(self.world.network):
                if (packet.source in group) != (packet.target in group):
                    self._finish_packet(packet, step, "lost")
            self.open_partition = (tuple(_lane(address) for address in sorted(group)), step)
        elif event.op == "heal":
            self._close_partition(step)
        elif event.op in ("crash", "restart", "pause", "resume") and event.node is not None:
            self._node_fault(step, event.op, event.node)

    def collect(self, step: int) -> None:
        """Note the packets sent and the node events recorded by the step just applied."""
        for packet in self.world.network:
            if packet.id not in self.sent:
                self.sent[packet.id] = (packet, step)
        new_events = self.world.events[self.events_seen:]
        self.events_seen = len(self.world.events)
        for address, effect in new_events:
            mark = mark_for_event(_lane(address), step, effect.name, dict(effect.fields))
            if mark is not None:
                self.diagram.marks.append(mark)

    def finish(self, last_step: int) -> None:
        """Draw what is still open when the trace ends: messages in flight, pauses, a partition."""
        for packet in list(self.world.network):
            self._finish_packet(packet, last_step, "in flight")
        for address in sorted(self.open_pauses):
            self._node_fault(last_step, "resume", address)
        self._close_partition(last_step)

    def _finish_packet(self, packet: Packet, step: int, fate: str) -> None:
        entry = self.sent.pop(packet.id, None)
        if entry is None:
            return
        _packet, sent_step = entry
        kind = type(packet.message).__name__
        self.diagram.messages.append(Message(
            source=_lane(packet.source),
            target=_lane(packet.target),
            send=sent_step,
            receive=step if fate == "delivered" else None,
            type=kind,
            label=_label(kind, packet.message),
            detail=_detail(kind, packet.message),
            fate=fate,
        ))

    def _node_fault(self, step: int, op: str, address: Address) -> None:
        lane = _lane(address)
        if op == "crash":
            self.diagram.marks.append(Mark(lane, step, "crash", "crash", _("crashed")))
        elif op == "restart":
            self.diagram.marks.append(Mark(lane, step, "restart", "restart", _("restarted from its disk")))
        elif op == "pause":
            self.open_pauses[address] = step
        elif op == "resume" and address in self.open_pauses:
            start = self.open_pauses.pop(address)
            self.diagram.spans.append(Span("pause", (lane,), start, step, _("paused")))

    def _close_partition(self, step: int) -> None:
        if self.open_partition is None:
            return
        group, start = self.open_partition
        self.open_partition = None
        names = ", ".join(lane.name for lane in group)
        self.diagram.spans.append(Span("partition", group, start, step,
                                       _("cut off: {nodes}").format(nodes=names)))


def _lane(address: Address) -> Lane:
    return Lane(address[0], address[1])


def _violation_lane(event: SimEvent, lanes: list[Lane]) -> Lane:
    """Return the lane the step that broke the invariant acted on, or the first lane."""
    address = event.target or event.node
    return _lane(address) if address is not None else lanes[0]


def _label(kind: str, message: Any) -> str:
    """Return the message type with its term or epoch, the fields that explain most arrows."""
    for name, prefix in (("term", "t"), ("epoch", "e")):
        value = getattr(message, name, None)
        if isinstance(value, int):
            return f"{kind} {prefix}{value}"
    return kind


def _detail(kind: str, message: Any) -> str:
    if not dataclasses.is_dataclass(message):
        return kind
    parts = []
    for item in dataclasses.fields(message):
        value = getattr(message, item.name)
        if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            text = f"{len(value)} items"
        elif dataclasses.is_dataclass(value):
            text = type(value).__name__
        else:
            text = short_value(value)
        parts.append(f"{item.name}={text}")
    detail = f"{kind}({', '.join(parts)})"
    return detail if len(detail) <= _DETAIL_CHARS else detail[: _DETAIL_CHARS - 3] + "..."


@contextlib.contextmanager
def _quiet_core_logs() -> Iterator[None]:
    """Silence the protocol core's log lines during a replay; the diagram shows those events."""
    logger = logging.getLogger("cluster")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
