"""Scheduler events: the steps a schedule is made of, and how each one changes the world.

An event names what it acts on by deterministic keys only: a node by its
address, a message by its link and per-link sequence number, an output
operation by its sync node and per-node sequence number. The same list of
events applied to a fresh world with the same configuration and seed
therefore reproduces the same run, which is what traces, replay and
shrinking rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.i18n import _
from cluster.sim.world import Address, World

# Operations that inject a fault, as opposed to the ordinary progress of the run.
FAULT_OPS = frozenset({"drop", "duplicate", "crash", "restart", "partition", "heal", "pause", "resume"})
OPS = frozenset({"deliver", "tick", "tick_all", "output", *FAULT_OPS})


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One step of a schedule.

    `op` is one of `OPS`. Messages are named by `source`, `target` and `seq`
    (the seq-th message sent on that link), output operations by `node` and
    `seq`, nodes by `node`, and a partition by the `group` it cuts off.
    """

    op: str
    node: Address | None = None
    source: Address | None = None
    target: Address | None = None
    seq: int = 0
    group: tuple[Address, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"op": self.op}
        if self.node is not None:
            data["node"] = format_address(self.node)
        if self.source is not None and self.target is not None:
            data["from"] = format_address(self.source)
            data["to"] = format_address(self.target)
        if self.seq:
            data["n"] = self.seq
        if self.group:
            data["group"] = [format_address(address) for address in self.group]
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> SimEvent:
        """Build an event from its JSON form; raise ValueError naming what is invalid."""
        if not isinstance(data, dict):
            raise ValueError(_("each event must be a JSON object, found {event!r}").format(event=data))
        op = data.get("op")
        if op not in OPS:
            raise ValueError(_("invalid event op {op!r}; expected one of {ops}").format(
                op=op, ops=", ".join(sorted(OPS))))
        node = parse_address(data["node"]) if "node" in data else None
        source = parse_address(data["from"]) if "from" in data else None
        target = parse_address(data["to"]) if "to" in data else None
        seq = data.get("n", 0)
        if not isinstance(seq, int) or seq < 0:
            raise ValueError(_("invalid event sequence number {seq!r}; expected an integer >= 1").format(seq=seq))
        group = tuple(parse_address(item) for item in data.get("group", ()))
        event = SimEvent(op, node, source, target, seq, group)
        _check_shape(event)
        return event


def _check_shape(event: SimEvent) -> None:
    op = event.op
    if op in ("deliver", "drop", "duplicate") and (event.source is None or event.target is None or not event.seq):
        raise ValueError(_("event {op!r} needs 'from', 'to' and 'n'").format(op=op))
    if op in ("tick", "crash", "restart", "pause", "resume", "output") and event.node is None:
        raise ValueError(_("event {op!r} needs 'node'").format(op=op))
    if op == "output" and not event.seq:
        raise ValueError(_("event 'output' needs 'n'"))
    if op == "partition" and not event.group:
        raise ValueError(_("event 'partition' needs a non-empty 'group'"))


def format_address(address: Address) -> str:
    return f"{address[0]} {address[1]}"


def parse_address(text: Any) -> Address:
    """Parse "sync 2", "store 1" or "client 3"; raise ValueError on anything else."""
    parts = str(text).split()
    if len(parts) != 2 or parts[0] not in ("sync", "store", "client") or not parts[1].isdigit():
        raise ValueError(_("invalid node address {text!r}; expected e.g. 'sync 2', 'store 1' or 'client 3'").format(
            text=text))
    return (parts[0], int(parts[1]))


def applicable(world: World, event: SimEvent) -> bool:
    """Return True when `event` can happen in the current state of `world`."""
    op = event.op
    if op in ("deliver", "drop", "duplicate"):
        assert event.source is not None and event.target is not None
        packet = world.find_packet(event.source, event.target, event.seq)
        if packet is None:
            return False
        return op != "deliver" or packet.target not in world.paused
    if op == "tick":
        assert event.node is not None
        return _known(world, event.node) and event.node not in world.paused and world.is_live(event.node)
    if op == "output":
        assert event.node is not None
        return world.find_output(event.node[1], event.seq) is not None and event.node not in world.paused
    if op == "crash":
        assert event.node is not None
        return event.node[0] != "client" and _known(world, event.node) and world.is_live(event.node)
    if op == "restart":
        assert event.node is not None
        return event.node[0] != "client" and _known(world, event.node) and not world.is_live(event.node)
    if op == "pause":
        assert event.node is not None
        return (
            event.node[0] != "client"
            and _known(world, event.node)
            and world.is_live(event.node)
            and event.node not in world.paused
        )
    if op == "resume":
        assert event.node is not None
        return event.node in world.paused
    if op == "partition":
        return not world.partition and all(_known(world, address) for address in event.group)
    if op == "heal":
        return bool(world.partition)
    return op == "tick_all"


def _known(world: World, address: Address) -> bool:
    role, node = address
    if role == "sync":
        return node in world.sync
    if role == "store":
        return node in world.store
    return node in world.clients


def apply_event(world: World, event: SimEvent) -> None:
    """Carry out `event`, which must be applicable (see `applicable`)."""
    op = event.op
    if op in ("deliver", "drop", "duplicate"):
        assert event.source is not None and event.target is not None
        packet = world.find_packet(event.source, event.target, event.seq)
        assert packet is not None
        if op == "deliver":
            world.deliver(packet.id)
        elif op == "drop":
            world.drop_message(packet.id)
        else:
            world.duplicate_message(packet.id)
        return
    if op == "tick_all":
        world.tick_all()
        return

    if op == "partition":
        world.start_partition(frozenset(event.group))
        return
    if op == "heal":
        world.heal()
        return

    assert event.node is not None
    role, node = event.node
    if op == "tick":
        world.tick(event.node)
    elif op == "output":
        pending = world.find_output(node, event.seq)
        assert pending is not None
        world.complete_output(pending.id)
    elif op == "crash":
        if role == "sync":
            world.crash_sync(node)
        else:
            world.crash_store(node)
    elif op == "restart":
        if role == "sync":
            world.restart_sync(node)
        else:
            world.restart_store(node)
    elif op == "pause":
        world.pause(event.node)
    elif op == "resume":
        world.resume(event.node)
    else:
        raise ValueError(f"invalid event op {op!r}")
